"""Trainer: method schedules, checkpoint selection, determinism and the run directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from ttfs.sdk.data import load_dataset
from ttfs.sdk.floatnet import NetworkError, load_float_network
from ttfs.sdk.simulate import run_closed_form
from ttfs.sdk.train import (TrainConfig, TrainingError, evaluate_run, fit, shift, train,
                       write_run)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def config(**kw):
    base = dict(dataset="digits", arch="mlp", epochs=4, sr_epochs=2, tk_epoch=2)
    return TrainConfig(**(base | kw))


def test_same_seed_same_model_and_history(digits):
    a = fit(config(epochs=2), digits, quiet=True)
    b = fit(config(epochs=2), digits, quiet=True)
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    timing = ("train_seconds", "train_cpu_seconds")
    strip = [{k: v for k, v in h.items() if k not in timing} for h in a.history]
    assert strip == [{k: v for k, v in h.items() if k not in timing} for h in b.history]


def kernel_trace(result, name="fc1"):
    return [(h["tau"][name], h["td"][name]) for h in result.history]


def test_tr_freezes_kernel_until_tk_epoch_then_trains(digits):
    result = fit(config(method="sr+tr"), digits, quiet=True)
    trace = kernel_trace(result)
    assert trace[0] == trace[1] == (5.0, 0.0)          # epochs 0, 1 < E_tk = 2: frozen
    assert trace[3] != trace[1]                        # trained from E_tk
    assert [h["p_ttfs"] for h in result.history] == [0.5, 1.0, 1.0, 1.0]


def test_kernel_trains_from_epoch_zero_without_tr_and_never_for_relu(digits):
    assert kernel_trace(fit(config(method="sm", epochs=1), digits, quiet=True))[0] != (5.0, 0.0)
    assert set(kernel_trace(fit(config(method="relu", epochs=2), digits, quiet=True))) == \
        {(5.0, 0.0)}


def test_tkbn_lowers_beta_and_spikes(digits):
    plain = fit(config(method="sr+tr", epochs=5), digits, quiet=True)
    tkbn = fit(config(method="sr+tr+tkbn", epochs=5, lambda_bn=1.0), digits, quiet=True)
    # Adam moves beta by about lr per step: 33 steps under L_BN push it down by ~0.03
    assert tkbn.model.fc1.bn.bias.mean() < plain.model.fc1.bn.bias.mean() - 0.02
    assert tkbn.history[-1]["val_spikes_per_hidden_neuron"] < \
        plain.history[-1]["val_spikes_per_hidden_neuron"]


def test_selection_is_best_eligible_validation_accuracy_fewer_spikes_on_ties(digits):
    result = fit(config(method="sr+tr+tkbn", epochs=5, sr_epochs=2, tk_epoch=3), digits,
                 quiet=True)
    eligible = [h for h in result.history if h["epoch"] >= 3]
    best = max(eligible, key=lambda h: (h["val_accuracy"], -h["val_spikes_per_hidden_neuron"]))
    assert result.selected_epoch == best["epoch"]
    late = fit(config(method="sr", epochs=2, sr_epochs=5), digits, quiet=True)
    assert late.selected_epoch == 1                    # no eligible epoch: the last


def test_run_directory_contents(digits, tmp_path):
    out = tmp_path / "run"
    result = train(config(epochs=2, input_coding="ttfs"), out, quiet=True)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "metrics.jsonl",
                                                     "model.safetensors", "result.json",
                                                     "training.png"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["method"] == "sr+tr+tkbn" and cfg["T"] == 16 and cfg["input_shape"] == [1, 8, 8]
    assert cfg["layers"][-1] == {"kind": "output", "name": "out", "out_features": 10}
    arrays = load_file(str(out / "model.safetensors"))
    assert set(arrays) == {"input.tau", "input.td", "fc1.weight", "fc1.bias", "fc1.tau",
                           "fc1.td", "fc1.bn.weight", "fc1.bn.bias", "fc1.bn.running_mean",
                           "fc1.bn.running_var", "out.weight", "out.bias"}
    assert all(a.dtype == np.float32 for a in arrays.values())
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0, 1]
    assert set(rows[0]["val_spikes_per_neuron"]) == {"input", "fc1"}
    assert json.loads((out / "result.json").read_text()) == result
    assert (out / "training.png").read_bytes()[:4] == b"\x89PNG"
    # the float network read with numpy alone gives the reported SNN accuracy
    net = load_float_network(out)
    trace = run_closed_form(net, digits.test_images)
    assert (trace.classes == digits.test_labels).mean() == result["snn_test_accuracy"]
    assert trace.spikes_per_hidden_neuron(net) == pytest.approx(result["spikes_per_hidden_neuron"])
    assert result["input_spikes"] > 0
    again = evaluate_run(out)
    assert again["test_accuracy"] == result["test_accuracy"]
    assert again["sops"] == result["sops"]


def test_failed_run_leaves_nothing(digits, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise TrainingError("loss became nan at epoch 0, step 0")

    monkeypatch.setattr("ttfs.sdk.train.fit", boom)
    with pytest.raises(TrainingError, match="loss became nan"):
        train(config(), tmp_path / "run", quiet=True)
    assert list(tmp_path.iterdir()) == []


def test_nan_loss_is_a_training_error(digits):
    with pytest.raises(TrainingError, match=r"loss became (nan|inf) at epoch 0"):
        fit(config(method="relu", lr=1e30, epochs=1), digits, quiet=True)


@pytest.mark.parametrize("kw,message", [
    ({"arch": "resnet"}, "unknown arch 'resnet'"),
    ({"method": "tkbn"}, "unknown method 'tkbn'"),
    ({"T": 1}, "T must be at least 2, got 1"),
    ({"tau0": 0.0}, "tau0 must be > 0, got 0.0"),
    ({"epochs": -1}, "epochs must be at least 1, got -1"),
    ({"sr_epochs": -2}, "sr-epochs must be >= 0"),
    ({"tkbn_form": "exact"}, "unknown TKBN form 'exact'"),
    ({"input_coding": "rate"}, "unknown input coding 'rate'"),
])
def test_invalid_options(kw, message):
    with pytest.raises(TrainingError, match=message):
        config(**kw).resolved()


def test_fit_from_init_state_and_write_run(digits, tmp_path):
    first = fit(config(epochs=1, method="sm"), digits, quiet=True)
    state = {k: v.numpy() for k, v in first.model.state_dict().items()}
    # lr tiny: the fine-tuned model starts from (and stays near) the given state, not the seed's
    tuned = fit(config(epochs=1, method="sm", lr=1e-9, seed=5), digits, quiet=True,
                init_state=state)
    fresh = fit(config(epochs=1, method="sm", lr=1e-9, seed=5), digits, quiet=True)
    w0, w1, w2 = first.model.fc1.weight, tuned.model.fc1.weight, fresh.model.fc1.weight
    assert torch.allclose(w0, w1, atol=1e-5) and not torch.allclose(w0, w2, atol=1e-2)
    with pytest.raises(NetworkError, match="init_state does not match"):
        fit(config(epochs=1), digits, quiet=True,
            init_state={"fc1.weight": state["fc1.weight"]})
    config_dict = json.loads(json.dumps(vars(config(epochs=1)))) | tuned.model.config()
    write_run(tmp_path, config_dict, state, {"test_accuracy": 0.5})
    net = load_float_network(tmp_path)
    assert net.layers[1].weight.shape == (256, 64)
    assert json.loads((tmp_path / "result.json").read_text()) == {"test_accuracy": 0.5}
    assert not (tmp_path / "metrics.jsonl").exists()


def test_qat_run_deploys_at_its_trained_accuracy(tmp_path, digits):
    """--weight-bits 3: the run's float-SNN test accuracy (fake-quantized weights) is the
    integer model's (ttfs.sdk.quantize defaults to the run's weight_bits, ttfs.sdk.golden runs
    it)."""
    from ttfs.sdk import golden
    from ttfs.sdk.quantize import quantize

    result = train(config(arch="d256", epochs=4, weight_bits=3, T=16, tau0=4.0), tmp_path / "q",
                   quiet=True)
    saved = json.loads((tmp_path / "q" / "config.json").read_text())
    assert saved["weight_bits"] == 3 and saved["arch"] == "d256"
    net = quantize(load_float_network(tmp_path / "q"))
    assert net.weight_bits == 3
    trace = golden.run(net, digits.test_images)
    integer = (trace.classes == digits.test_labels).mean()
    assert result["snn_test_accuracy"] > 0.7
    assert abs(integer - result["snn_test_accuracy"]) <= 0.02


def test_cli_layers_from_toml_and_options(tmp_path, capsys):
    from ttfs.sdk.cli import main

    toml = tmp_path / "net.toml"
    toml.write_text('dataset = "digits"\nepochs = 1\nT = 8\ntau0 = 2.0\naugment = 1\n'
                    'lr-schedule = "cosine"\n'
                    '[[layers]]\nkind = "conv2d"\nname = "c1"\nout_channels = 4\n'
                    'kernel_size = 3\npadding = 1\n[[layers]]\nkind = "maxpool2d"\n'
                    'name = "p1"\nsize = 2\n[[layers]]\nkind = "flatten"\nname = "f"\n'
                    '[[layers]]\nkind = "output"\nname = "o"\nout_features = 10\n')
    assert main(["--config", str(toml), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    saved = json.loads((tmp_path / "r" / "config.json").read_text())
    assert [s["name"] for s in saved["layers"]] == ["c1", "p1", "f", "o"]
    assert saved["augment"] == 1 and saved["lr_schedule"] == "cosine"
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert result["train_images"] == 1437 and result["test_images"] == 360
    assert result["validation_images"] == 144 and result["fit_images"] == 1293
    capsys.readouterr()
    toml.write_text('[[layers]]\nkind = "dense"\nname = "d"\n')
    assert main(["--config", str(toml), "--dataset", "digits", "--out",
                 str(tmp_path / "bad")]) == 2
    assert "layer 'd' (dense): 'out_features' must be" in capsys.readouterr().err
    assert main(["--arch", "c8k5,q3", "--out", str(tmp_path / "bad")]) == 2
    assert "token 2 'q3' is not a layer" in capsys.readouterr().err
    assert main(["--weight-bits", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "weight-bits must be in 2..16, got 1" in capsys.readouterr().err
    assert main(["--dataset", "yinyang", "--arch", "mlp", "--augment", "2", "--out",
                 str(tmp_path / "bad")]) == 2
    assert "too small to shift" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_shift_moves_each_image_by_its_own_offset():
    images = torch.arange(2 * 25, dtype=torch.float32).reshape(2, 1, 5, 5) + 1
    out = shift(images, 1, torch.Generator().manual_seed(0))
    for n in range(2):
        matches = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                   if torch.equal(out[n, 0], torch.nn.functional.pad(
                       images[n, 0], (1, 1, 1, 1))[1 + dy:6 + dy, 1 + dx:6 + dx])]
        assert len(matches) == 1


def test_spike_budget_selects_within_it(digits):
    free = fit(config(method="sr+tr+tkbn", epochs=5, lambda_bn=1.0), digits, quiet=True)
    spikes = [h["val_spikes_per_hidden_neuron"] for h in free.history][2:]
    budget = sorted(spikes)[1]              # two eligible epochs are within it
    capped = fit(config(method="sr+tr+tkbn", epochs=5, lambda_bn=1.0, max_spikes=budget),
                 digits, quiet=True)
    chosen = capped.history[capped.selected_epoch]
    assert chosen["val_spikes_per_hidden_neuron"] <= budget
    within = [h for h in capped.history[2:] if h["val_spikes_per_hidden_neuron"] <= budget]
    assert chosen["val_accuracy"] == max(h["val_accuracy"] for h in within)
    tiny = fit(config(method="sr+tr+tkbn", epochs=5, lambda_bn=1.0, max_spikes=1e-9), digits,
               quiet=True)
    assert tiny.history[tiny.selected_epoch]["val_spikes_per_hidden_neuron"] == \
        min(h["val_spikes_per_hidden_neuron"] for h in tiny.history[2:])
