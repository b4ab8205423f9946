"""Chat formatting: the model's own template, or LIMA's minimal one with a new end-of-turn (EOT) token.

LIMA appends a special EOT token after every utterance so that the end of a turn is not confused with the
end of a document (EOS). The template is stored in the saved tokenizer, so ``apply_chat_template`` at
inference renders exactly what training saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from lima.core.errors import ConfigError

# Roles on their own line, the utterance, then EOT. ``eot_token`` is passed in when rendering.
LIMA_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}:\n{{ message['content'] }}{{ eot_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:\n{% endif %}"
)


@dataclass(frozen=True)
class ChatFormat:
    kind: Literal["lima", "model"]
    eot_token: str | None  # the added EOT token (LIMA template) or None (the model's template)
    added_tokens: int  # how many tokens were added to the vocabulary

    @property
    def stop_tokens(self) -> list[str]:
        return [self.eot_token] if self.eot_token else []


def prepare_tokenizer(tokenizer: Any, chat_template: str, eot_token: str) -> ChatFormat:
    """Give ``tokenizer`` the chat template to train with (mutates it); add the EOT token for LIMA's."""
    kind = chat_template
    if kind == "auto":
        kind = "model" if getattr(tokenizer, "chat_template", None) else "lima"
    if kind == "model":
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                "chat_template: model: this model's tokenizer has no chat template; use chat_template=lima"
            )
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return ChatFormat("model", None, 0)
    added = tokenizer.add_special_tokens({"additional_special_tokens": [eot_token]})
    # The template reads the EOT token from the tokenizer so that it survives save/load.
    tokenizer.chat_template = LIMA_TEMPLATE.replace("{{ eot_token }}", eot_token)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or eot_token
    return ChatFormat("lima", eot_token, added)


def end_of_turn_ids(tokenizer: Any, chat_format: ChatFormat) -> list[int]:
    """Token ids that end an assistant turn: EOT (LIMA) and the tokenizer's EOS."""
    ids = [tokenizer.convert_tokens_to_ids(t) for t in chat_format.stop_tokens]
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted({i for i in ids if i is not None and i >= 0})
