"""LIMA's decoding as applied, not as configured: penalty scope, end-of-turn stops, no hidden top-k, BOS and
stop marker of the plain template, per-response seeds (batching, resume), K samples per prompt.

Several tests swap a tiny model's output head for a constant one (zero weights, a chosen bias): its logits
are then exactly the bias at every step, so the tokens greedy decoding must pick are known in advance."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from lima.core.config import load_config
from lima.core.errors import LimaError
from lima.eval.backends import _load_transformers, chat_setup, generate_batch
from lima.eval.config import DecodingConfig, GenerateConfig
from lima.eval.decoding import GeneratedRepetitionPenalty, end_of_turn_token, sample_seed
from lima.eval.generate import run_generation
from tests.conftest import ROOT

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    def load(chat_template: str | None = None, specials: list[str] = ()):
        tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
        tokenizer.add_special_tokens({"additional_special_tokens": list(specials)})
        tokenizer.chat_template = chat_template
        tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        return model, tokenizer

    return load


def _constant_head(model, bias: dict[int, float], default: float = 0.0) -> None:
    """Logits == bias at every position, whatever the input."""
    vocab = model.get_input_embeddings().weight.shape[0]
    head = torch.nn.Linear(model.config.hidden_size, vocab, bias=True)
    head.weight.data.zero_()
    head.bias.data.fill_(default)
    for token, value in bias.items():
        head.bias.data[token] = value
    model.lm_head = head


def _word(tokenizer, text: str) -> int:
    [token] = tokenizer(text, add_special_tokens=False)["input_ids"]
    return token


def _render(tokenizer, setup, prompt: str) -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}],
        chat_template=setup.template,
        tokenize=False,
        add_generation_prompt=True,
    )


def test_penalty_spares_the_prompt_and_its_end_of_turn():
    eot, word, other = 3, 7, 9
    prompt = torch.tensor([[eot, word, eot]])
    scores = torch.zeros(1, 16)
    scores[0, eot], scores[0, word], scores[0, other] = 5.0, 5.5, -2.0
    penalty = GeneratedRepetitionPenalty(1.2, prompt_length=3)
    assert torch.equal(penalty(prompt, scores.clone()), scores)  # nothing generated yet: nothing penalised
    after = penalty(torch.tensor([[eot, word, eot, word, other]]), scores.clone())
    assert after[0, eot] == 5.0  # in the prompt only: untouched (transformers' penalty makes it 4.17)
    assert after[0, word] == pytest.approx(5.5 / 1.2) and after[0, other] == pytest.approx(-2.4)


def test_lima_template_stops_at_eot_with_the_penalty_on(tiny):
    """EOT 5.0 vs a word 5.5: LIMA writes the word once, then the penalised word (4.58) loses to EOT. Penalising
    the prompt (which holds EOT) would make EOT 4.17 and repeat the word to max_new_tokens."""
    from lima.finetune.template import LIMA_TEMPLATE

    model, tokenizer = tiny(LIMA_TEMPLATE.replace("{{ eot_token }}", "<|eot|>"), ["<|eot|>"])
    eot, word = tokenizer.convert_tokens_to_ids("<|eot|>"), _word(tokenizer, " the")
    _constant_head(model, {eot: 5.0, word: 5.5})
    setup = chat_setup(tokenizer, model.generation_config.eos_token_id)
    assert eot in setup.stop_ids and tokenizer.eos_token_id in setup.stop_ids
    text = _render(tokenizer, setup, "coffee please")
    assert "<|eot|>" in text  # the prompt holds EOT
    decoding = DecodingConfig(max_new_tokens=12, do_sample=False, repetition_penalty=1.2)
    [done] = generate_batch(model, tokenizer, [text], [0], decoding, setup)
    assert (done.text, done.new_tokens, done.finish) == ("the", 2, "stop")


def test_stops_at_the_templates_end_of_turn_when_eos_is_another_token(tiny):
    model, tokenizer = tiny(CHATML, ["<|im_start|>", "<|im_end|>"])
    assert tokenizer.eos_token == "</s>"  # like Qwen2.5: EOS is not the end of a turn
    assert end_of_turn_token(tokenizer, CHATML) == "<|im_end|>"
    im_end, word = tokenizer.convert_tokens_to_ids("<|im_end|>"), _word(tokenizer, " the")
    _constant_head(model, {im_end: 5.0, word: 5.5})
    setup = chat_setup(tokenizer, model.generation_config.eos_token_id)
    assert set(setup.stop_ids) == {im_end, tokenizer.eos_token_id}
    decoding = DecodingConfig(max_new_tokens=12, do_sample=False)
    [done] = generate_batch(model, tokenizer, [_render(tokenizer, setup, "a beer?")], [0], decoding, setup)
    assert (done.text, done.new_tokens, done.finish) == ("the", 2, "stop")


LLAMA3 = (
    "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] | trim }}"
    "<|eot_id|>{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
PHI3_LIKE = "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n<|end|>\n{% endfor %}"


@pytest.mark.parametrize(
    ("template", "specials", "expected"),
    [
        (CHATML, ["<|im_start|>", "<|im_end|>"], "<|im_end|>"),
        (LLAMA3, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], "<|eot_id|>"),
        (PHI3_LIKE, ["<|user|>", "<|assistant|>", "<|end|>"], "<|end|>"),  # after a newline
        (None, [], None),  # the plain template: a "User:" line, not a token, ends the turn
    ],
)
def test_end_of_turn_is_read_off_the_template(tiny_model_dir, template, specials, expected):
    from transformers import AutoTokenizer

    from lima.eval.decoding import PLAIN_TEMPLATE

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    assert end_of_turn_token(tokenizer, template or PLAIN_TEMPLATE) == expected


def test_sampling_is_nucleus_only_without_a_hidden_top_k(tmp_path, tiny_model_dir):
    """A checkpoint whose generation_config.json asks for top_k 20 and a repetition penalty, as real ones do
    (Qwen2.5: top_k 20, repetition_penalty 1.05), loaded the way `lima generate` loads it, then given nearly
    uniform logits (a gentle ramp, so that a top-k keeps the same 20 tokens at every step). Nucleus 0.9 alone
    keeps ~460 tokens, so 4 x 32 draws hit far more than 20 distinct ones; any top-k (transformers < 5 also
    adds top_k=50 by default) caps them."""
    from transformers import AutoTokenizer, GenerationConfig

    from lima.eval.decoding import logits_processors

    checkpoint = tmp_path / "ckpt"
    shutil.copytree(tiny_model_dir, checkpoint)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    hidden = {"do_sample": True, "top_k": 20, "top_p": 0.8, "temperature": 0.6, "repetition_penalty": 1.05}
    ids = {"bos_token_id": 1, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    GenerationConfig(**ids, **hidden).save_pretrained(checkpoint)

    model, tokenizer, _ = _load_transformers(str(checkpoint), "float32", "cpu")  # the real loading path
    tokenizer.padding_side = "left"
    vocab = model.get_input_embeddings().weight.shape[0]
    _constant_head(model, {t: -1e-3 * t for t in range(vocab)} | {tokenizer.eos_token_id: -1e4})
    setup = chat_setup(tokenizer, model.generation_config.eos_token_id)
    texts = [_render(tokenizer, setup, p) for p in ("one", "two", "three", "four")]
    done = generate_batch(model, tokenizer, texts, [1, 2, 3, 4], DecodingConfig(max_new_tokens=32), setup)
    drawn = {t for d in done for t in d.tokens}
    assert len(drawn) > 60, len(drawn)

    chain = logits_processors(1.2, 1, True, 0.7, 0.9, [0], "cpu")
    assert [type(p).__name__ for p in chain] == [
        "GeneratedRepetitionPenalty",
        "TemperatureLogitsWarper",
        "TopPLogitsWarper",
        "RowSeededSampler",
    ]


def test_plain_template_starts_with_bos_and_stops_at_the_next_user_line(tiny):
    model, tokenizer = tiny()  # a base model: no chat template
    setup = chat_setup(tokenizer, tokenizer.eos_token_id)
    text = _render(tokenizer, setup, "hello")
    assert text == "<s>User:\nhello\nAssistant:\n"
    # Constant logits with the penalty walk down the bias: " the", then the tokens of "\nUser:".
    marker = tokenizer("\nUser:", add_special_tokens=False)["input_ids"]
    order = [_word(tokenizer, " the"), *marker]
    assert len(set(order)) == len(order)
    _constant_head(model, {t: 10.0 - 0.1 * i for i, t in enumerate(order)})
    decoding = DecodingConfig(max_new_tokens=20, do_sample=False, repetition_penalty=1.2)
    [done] = generate_batch(model, tokenizer, [text], [0], decoding, setup)
    assert (done.text, done.new_tokens, done.finish) == ("the", len(order), "stop")


def _gen_config(tmp_path: Path, prompts: Path, **decoding) -> GenerateConfig:
    overrides = [f"prompts={prompts}", "decoding.max_new_tokens=10", "batch_size=3"]
    overrides += [f"decoding.{k}={v}" for k, v in decoding.items()]
    return load_config(ROOT / "configs/generate/demo.yaml", GenerateConfig, overrides)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _outputs(path: Path) -> list[tuple[str, int, str]]:
    return [(r["prompt_id"], r["sample"], r["output"]) for r in _lines(path)]


@pytest.fixture
def prompts(tmp_path) -> Path:
    path = tmp_path / "p.txt"
    path.write_text("how to brew coffee\nwrite a long poem about the best beer in the world\nwhy\nexplain\n")
    return path


def test_a_response_does_not_depend_on_its_batch_or_on_resuming(tmp_path, tiny_model_dir, prompts):
    config = _gen_config(tmp_path, prompts)
    whole = run_generation(config, tmp_path / "whole.jsonl", model=str(tiny_model_dir))
    single = run_generation(
        config.model_copy(update={"batch_size": 1}), tmp_path / "single.jsonl", model=str(tiny_model_dir)
    )
    assert _outputs(single) == _outputs(whole)
    assert len({o for _, _, o in _outputs(whole)}) == 4  # the four prompts sampled differently

    resumed = tmp_path / "resumed.jsonl"
    run_generation(config, resumed, model=str(tiny_model_dir), limit=1)
    with open(resumed, "a") as fh:
        fh.write('{"prompt_id": "p-2", "sample": 0, "outp')  # a kill in mid-write
    run_generation(config, resumed, model=str(tiny_model_dir))
    assert _outputs(resumed) == _outputs(whole)
    record = _lines(whole)[1]
    assert record["settings"]["sample_seed"] == sample_seed(0, "p-2", 0)
    assert record["settings"]["sent"]["top_k"] is None  # disabled, recorded as such
    assert record["settings"]["repetition_penalty_scope"] == "generated tokens"
    assert record["settings"]["sent"]["repetition_penalty"] == 1.2


def test_k_samples_per_prompt_with_their_own_seeds_and_resume(tmp_path, tiny_model_dir, prompts):
    config = _gen_config(tmp_path, prompts, samples=3)
    out = run_generation(config, tmp_path / "k.jsonl", model=str(tiny_model_dir), limit=2)
    records = _lines(out)
    assert [(r["prompt_id"], r["sample"]) for r in records] == [
        (p, k) for p in ("p-1", "p-2") for k in range(3)
    ]
    seeds = [r["settings"]["sample_seed"] for r in records]
    assert len(set(seeds)) == 6
    assert len({r["output"] for r in records if r["prompt_id"] == "p-2"}) == 3  # distinct samples

    one = run_generation(
        _gen_config(tmp_path, prompts), tmp_path / "one.jsonl", model=str(tiny_model_dir), limit=2
    )
    assert _outputs(one) == [x for x in _outputs(out) if x[1] == 0]  # sample 0 is the same with K=1

    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:4]))  # samples (p-2, 1) and (p-2, 2) lost
    run_generation(config, out, model=str(tiny_model_dir), limit=2)
    manifest = json.loads((tmp_path / "k.run" / "manifest.json").read_text())
    assert (manifest["resumed"], manifest["generated"], manifest["samples"]) == (4, 2, 3)
    assert _outputs(out) == [(r["prompt_id"], r["sample"], r["output"]) for r in records]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"prompt": "x", "model": "m", "output": "y"}', "expected a JSON object with a prompt_id"),
        ('["p-1", "y"]', "expected a JSON object with a prompt_id"),
        ('{"prompt_id": "p-1", "sample": "two", "model": "m"}', "sample: expected an integer"),
    ],
)
def test_resuming_over_a_foreign_line_names_file_and_line(tmp_path, prompts, line, why):
    out = tmp_path / "gen.jsonl"
    out.write_text('{"prompt_id": "p-1", "model": "m", "output": "ok"}\n' + line + "\n")
    with pytest.raises(LimaError, match=rf"gen\.jsonl:2: .*{re.escape(why)}"):
        run_generation(_gen_config(tmp_path, prompts), out, model="m")


def test_no_prompts_is_an_error_naming_the_file(tmp_path, prompts, cli):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = cli(
        "generate", "configs/generate/demo.yaml", "--prompts", str(empty), "--out", str(tmp_path / "o.jsonl")
    )
    assert (
        result.returncode == 2
        and f"{empty}: empty file" in result.stderr
        and "Traceback" not in result.stderr
    )
    with pytest.raises(LimaError, match=r"p\.txt: no prompts left to generate from"):
        run_generation(_gen_config(tmp_path, prompts), tmp_path / "o.jsonl", model="m", limit=0)
    assert not (tmp_path / "o.jsonl").exists()


def _openai_config(tmp_path: Path, base_url: str, **fields) -> GenerateConfig:
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\n")
    path = tmp_path / "gen.yaml"
    body = {"backend": "openai", "prompts": str(prompts), "decoding": {"samples": 2}, **fields}
    body["endpoint"] = {"base_url": base_url, "model": "served", "api_key_env": None}
    path.write_text(yaml.safe_dump(body))
    return load_config(path, GenerateConfig)


@pytest.mark.parametrize(
    ("server", "expected", "absent"),
    [
        ("vllm", {"repetition_penalty": 1.2, "top_k": -1, "min_p": 0.0}, ["repeat_penalty"]),
        ("llamacpp", {"repeat_penalty": 1.2, "top_k": 0, "min_p": 0.0}, ["repetition_penalty"]),
        ("openai", {}, ["repetition_penalty", "repeat_penalty", "top_k", "min_p"]),
    ],
)
def test_openai_backend_sends_the_penalty_where_the_server_takes_it(tmp_path, server, expected, absent):
    from tests.eval.fake_openai import FakeOpenAI

    with FakeOpenAI(reply=lambda body: f"re {body['messages'][-1]['content']}") as fake:
        config = _openai_config(tmp_path, fake.base_url, openai_server=server)
        out = run_generation(config, tmp_path / "g.jsonl")
        bodies = sorted(fake.requests, key=lambda b: b["seed"])
    records = _lines(out)
    assert [(r["prompt_id"], r["sample"]) for r in records] == [
        ("p-1", 0),
        ("p-1", 1),
        ("p-2", 0),
        ("p-2", 1),
    ]
    assert sorted(r["settings"]["sample_seed"] for r in records) == [b["seed"] for b in bodies]
    for body in bodies:
        assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.7, 0.9, 2048)
        assert {k: body[k] for k in expected} == expected and not set(absent) & set(body)
    for record in records:  # settings.sent is the request, field for field
        [body] = [b for b in bodies if b["seed"] == record["settings"]["sample_seed"]]
        assert record["settings"]["sent"] == {k: body[k] for k in record["settings"]["sent"]}
        assert set(record["settings"]["sent"]) == set(body) - {"model", "messages"}
    assert records[0]["settings"]["repetition_penalty_scope"].startswith(
        {"vllm": "prompt and generated", "llamacpp": "the last 64", "openai": "not applied"}[server]
    )
    if server == "openai":
        assert "no repetition penalty" in records[0]["settings"]["not_sent"]["repetition_penalty"]


def test_openai_backend_asks_which_server_it_talks_to(tmp_path):
    config = _openai_config(tmp_path, "http://127.0.0.1:9/v1")
    with pytest.raises(LimaError, match=re.escape("set openai_server: vllm | llamacpp | openai")):
        run_generation(config, tmp_path / "g.jsonl")


def test_lima_recipe_train_configs_pin_limas_template():
    for path in sorted((ROOT / "configs/train").glob("lima*.yaml")):
        assert yaml.safe_load(path.read_text())["chat_template"] == "lima", path


def test_vllm_backend_gets_the_same_decoding(tmp_path, tiny_model_dir, prompts, monkeypatch):
    """vLLM is a GPU extra; a stand-in module records what the backend hands it."""
    import sys
    import types

    from transformers import AutoTokenizer

    calls: list[dict] = []

    class SamplingParams:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

    class LLM:
        def __init__(self, **kwargs):
            self.tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
            self.tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
            self.tokenizer.chat_template = CHATML

        def get_tokenizer(self):
            return self.tokenizer

        def chat(self, messages, params, chat_template, use_tqdm):
            calls.append(
                {"messages": messages, "params": [p.kwargs for p in params], "template": chat_template}
            )
            done = types.SimpleNamespace(text=" an answer ", token_ids=[5, 6], finish_reason="stop")
            return [types.SimpleNamespace(outputs=[done]) for _ in messages]

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams))
    config = _gen_config(tmp_path, prompts, samples=2).model_copy(update={"backend": "vllm"})
    out = run_generation(config, tmp_path / "v.jsonl", model=str(tiny_model_dir), limit=2)
    [call] = calls
    assert call["template"] == CHATML and len(call["params"]) == 4
    im_end = LLM().tokenizer.convert_tokens_to_ids("<|im_end|>")
    for params in call["params"]:
        assert (params["top_k"], params["min_p"], params["top_p"], params["temperature"]) == (
            -1,
            0.0,
            0.9,
            0.7,
        )
        assert params["repetition_penalty"] == 1.2 and im_end in params["stop_token_ids"]
    records = _lines(out)
    assert [p["seed"] for p in call["params"]] == [r["settings"]["sample_seed"] for r in records]
    assert [r["settings"]["sample_seed"] for r in records] == [
        sample_seed(0, pid, k) for pid in ("p-1", "p-2") for k in range(2)
    ]
    assert records[0]["settings"]["sent"] == call["params"][0]
    assert records[0]["settings"]["repetition_penalty_scope"].startswith("prompt and generated")
