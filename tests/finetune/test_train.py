"""``lima train`` / ``lima export`` through the real CLI on a tiny random Llama (2 layers, hidden 64)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lima.core.checkpoint import load_for_inference
from tests.finetune.conftest import THREADS, records, train_args, write_jsonl

# First logged losses of tiny.yaml on records(8) with seed 0 on CPU (fp32). A change here means the data
# pipeline, the template, the schedule or the initialisation changed: update only if that was intended.
PINNED_LOSSES = [6.205201, 6.204527, 6.171872]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lora_run_writes_the_checkpoint_contract(lora_run, tiny_model_dir):
    epochs = _jsonl(lora_run / "epochs.jsonl")
    assert [e["epoch"] for e in epochs] == [1, 2] and [e["global_step"] for e in epochs] == [4, 8]
    assert all(e["dev_loss"] is not None and e["train_loss"] is not None for e in epochs)
    for k in (1, 2):
        ckpt = lora_run / "checkpoints" / f"epoch-{k}"
        info = json.loads((ckpt / "lima_checkpoint.json").read_text())
        assert info == {
            "base_model": str(tiny_model_dir), "method": "lora", "eot_token": "<|eot|>", "chat_template": "lima",
            "epoch": k, "global_step": 4 * k, "dev_loss": pytest.approx(epochs[k - 1]["dev_loss"]),
            "dtype": "float32",
        }  # fmt: skip
        assert (ckpt / "adapter_model.safetensors").is_file() and (ckpt / "tokenizer.json").is_file()
        assert not list(ckpt.parent.glob(".*tmp"))
    log = _jsonl(lora_run / "train_log.jsonl")
    assert [r["step"] for r in log] == list(range(1, 9))
    assert all(r["tokens_per_s"] > 0 and r["lr"] > 0 for r in log)
    # LIMA schedule: no warmup, linear from the peak (1e-3) to the floor (1e-4) at the last step.
    assert log[0]["lr"] == pytest.approx(1e-3) and log[-1]["lr"] == pytest.approx(1e-4)
    assert log[1]["lr"] - log[2]["lr"] == pytest.approx(log[2]["lr"] - log[3]["lr"])
    manifest = json.loads((lora_run / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["command"] == "train"
    assert manifest["residual_dropout"] == [0.0, 0.1]
    assert (
        manifest["data_stats"]["train"]["examples"] == 8 and manifest["data_stats"]["train"]["trimmed"] == 0
    )
    assert (lora_run / "tensorboard").is_dir() is False  # tiny.yaml turns TensorBoard off


def test_pinned_losses(lora_run):
    losses = [r["loss"] for r in _jsonl(lora_run / "train_log.jsonl")[:3]]
    assert losses == pytest.approx(PINNED_LOSSES, rel=1e-4)


def test_lora_trains_adapters_and_new_token_only(lora_run, tiny_model_dir):
    base = load_file(tiny_model_dir / "model.safetensors")
    model, tokenizer = load_for_inference(lora_run / "checkpoints" / "epoch-2")
    eot = tokenizer.convert_tokens_to_ids("<|eot|>")
    assert eot == len(base["model.embed_tokens.weight"])  # appended to the vocabulary
    frozen = {
        n.removeprefix("base_model.model.").replace(".token_adapter", "").replace(".base_layer", ""): p
        for n, p in model.named_parameters()
        if "lora_" not in n and "trainable_tokens" not in n
    }
    assert frozen.keys() == base.keys()
    for name, tensor in base.items():
        loaded = frozen[name][: tensor.shape[0]]  # resized embedding / LM head: the old rows are untouched
        assert torch.equal(loaded, tensor), name
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # LoRA B starts at zero: it was trained
    # The EOT rows (input embedding and untied LM head) were trained away from their mean initialisation.
    deltas = {n: p for n, p in model.named_parameters() if "trainable_tokens_delta" in n}
    assert len(deltas) == 2
    for name, delta in deltas.items():
        key = "lm_head.weight" if "lm_head" in name else "model.embed_tokens.weight"
        mean = base[key].mean(0, keepdim=True)
        assert delta.shape == (1, mean.shape[1]) and not torch.allclose(delta, mean, atol=1e-4), name


def test_eot_in_saved_tokenizer_and_generation_stops_at_it(lora_run):
    from transformers import LogitsProcessor, LogitsProcessorList

    model, tokenizer = load_for_inference(lora_run / "checkpoints" / "epoch-2")
    eot = tokenizer.convert_tokens_to_ids("<|eot|>")
    assert "<|eot|>" in tokenizer.all_special_tokens and eot in model.generation_config.eos_token_id
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "how do i brew beer"}], add_generation_prompt=True, return_dict=True,
        return_tensors="pt",
    )  # fmt: skip
    assert tokenizer.decode(prompt["input_ids"][0]).endswith("<|eot|>\nAssistant:\n")

    class ForceEotAt(LogitsProcessor):  # make the 4th new token EOT; generation must stop right there
        def __call__(self, input_ids, scores):
            if input_ids.shape[1] - prompt["input_ids"].shape[1] == 3:
                scores[:] = -float("inf")
                scores[:, eot] = 0
            return scores

    out = model.generate(
        **prompt, max_new_tokens=20, do_sample=False, logits_processor=LogitsProcessorList([ForceEotAt()])
    )
    new = out[0, prompt["input_ids"].shape[1] :].tolist()
    assert len(new) == 4 and new[-1] == eot


@pytest.mark.parametrize("batching", ["padding_free", "padded"])
def test_kill_mid_epoch_then_resume_matches_uninterrupted(cli, lora_run, tiny_model_dir, train_files, tmp_path,
                                                           batching):  # fmt: skip
    data, dev = train_files
    args = train_args(tiny_model_dir, data, dev, tmp_path / "killed", "output.resume_every_steps=3",
                      f"batching={batching}")  # fmt: skip
    reference = lora_run
    if batching == "padded":  # lora_run is padding-free (tiny.yaml); run the padded reference here
        reference = tmp_path / "reference"
        assert (
            cli(
                *[a if a != str(tmp_path / "killed") else str(reference) for a in args], env=THREADS
            ).returncode
            == 0
        )
    out = tmp_path / "killed"
    killed = cli(*args, env={**THREADS, "LIMA_TEST_KILL_AT_STEP": "7"})
    assert killed.returncode == -9  # SIGKILL: no cleanup ran
    assert (out / "checkpoints" / "epoch-1").is_dir() and not (out / "checkpoints" / "epoch-2").exists()
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    if batching == "padding_free":
        again = cli(*args, env=THREADS)
        assert again.returncode == 2 and "--resume" in again.stderr  # never overwrites a run by accident
    resumed = cli(*args, "--resume", env=THREADS)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stdout and "checkpoint-6" in resumed.stdout
    assert [r["step"] for r in _jsonl(out / "train_log.jsonl")] == list(range(1, 9))
    assert [e["epoch"] for e in _jsonl(out / "epochs.jsonl")] == [1, 2]
    mine = load_file(out / "checkpoints" / "epoch-2" / "adapter_model.safetensors")
    expected = load_file(reference / "checkpoints" / "epoch-2" / "adapter_model.safetensors")
    assert mine.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(mine[key], expected[key], rtol=1e-5, atol=1e-6)
    ref_losses = [r["loss"] for r in _jsonl(reference / "train_log.jsonl")]
    assert [r["loss"] for r in _jsonl(out / "train_log.jsonl")] == pytest.approx(ref_losses, rel=1e-5)


def test_export_merges_the_adapter(cli, lora_run, tmp_path):
    out = tmp_path / "export"
    result = cli("export", str(lora_run), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not (out / "adapter_config.json").exists()
    merged, tokenizer = load_for_inference(out)
    adapter, _ = load_for_inference(lora_run / "checkpoints" / "epoch-2")
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "why brew"}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, adapter(ids).logits, rtol=1e-4, atol=1e-4)
    assert merged.generation_config.eos_token_id == adapter.generation_config.eos_token_id
    assert json.loads((out / "manifest.json").read_text())["status"] == "ok"


def test_full_finetuning_loss_falls_on_a_fixed_batch(cli, tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "two.jsonl", records(2))
    out = tmp_path / "full"
    result = cli(*train_args(tiny_model_dir, data, None, out, "method=full", "epochs=6", "batch_size=2",
                             "batching=padded", "dropout_top=0.0", "learning_rate=3e-3"), env=THREADS)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    losses = [r["loss"] for r in _jsonl(out / "train_log.jsonl")]
    assert len(losses) == 6 and all(b < a for a, b in itertools.pairwise(losses))
    assert losses[-1] < 0.85 * losses[0]
    ckpt = out / "checkpoints" / "epoch-6"
    assert (ckpt / "model.safetensors").is_file() and (ckpt / "config.json").is_file()
    assert json.loads((ckpt / "lima_checkpoint.json").read_text())["method"] == "full"
    assert all(e["dev_loss"] is None for e in _jsonl(out / "epochs.jsonl"))


def test_dora_adapter(cli, tiny_model_dir, tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", records(2))
    out = tmp_path / "dora"
    result = cli(*train_args(tiny_model_dir, data, None, out, "method=dora", "epochs=1"), env=THREADS)
    assert result.returncode == 0, result.stderr[-3000:]
    ckpt = out / "checkpoints" / "epoch-1"
    assert json.loads((ckpt / "adapter_config.json").read_text())["use_dora"] is True
    assert any("lora_magnitude_vector" in k for k in load_file(ckpt / "adapter_model.safetensors"))
    model, _ = load_for_inference(ckpt)
    assert not model.training
