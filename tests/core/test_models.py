import time

import pytest

from lima.core.errors import ModelResolutionError
from lima.core.models import DEFAULT_MODEL, load_causal_lm, load_config, load_tokenizer, resolve_model


def test_resolve_kinds(tiny_model_dir):
    embedded = resolve_model(DEFAULT_MODEL)
    assert (
        embedded.kind == "embedded" and embedded.gguf_path.is_file() and embedded.gguf_file.endswith(".gguf")
    )
    local = resolve_model(str(tiny_model_dir))
    assert local.kind == "local" and local.location == str(tiny_model_dir)
    assert resolve_model("meta-llama/Llama-3.1-8B").kind == "hub"


def test_bad_specs_get_one_line_messages(tmp_path):
    with pytest.raises(ModelResolutionError, match="did you mean smollm2-135m-instruct"):
        resolve_model("embedded:smollm2-135m-instruc")
    with pytest.raises(ModelResolutionError, match="no such local path"):
        resolve_model(str(tmp_path / "nope"))
    t0 = time.monotonic()
    with pytest.raises(ModelResolutionError) as info:
        load_config("some-org/some-model-that-is-not-here")
    message = str(info.value)
    assert "\n" not in message and "use a local path or embedded:smollm2-135m-instruct" in message
    assert time.monotonic() - t0 < 20


def test_embedded_model_loads_offline_and_generates():
    tokenizer = load_tokenizer(DEFAULT_MODEL)
    model = load_causal_lm(DEFAULT_MODEL)
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    reply = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in reply


def test_trust_remote_code_off_by_default(tiny_model_dir, monkeypatch):
    import transformers

    seen = {}
    original = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    load_config(str(tiny_model_dir))
    assert seen["trust_remote_code"] is False
