"""Figures drawn from metrics dicts alone: files appear atomically, missing points and bands are handled."""

import json

import pytest

from warm.errors import WarmError
from warm.report.figures import lmc_panels, plot_curves, plot_lmc

PNG = b"\x89PNG\r\n\x1a\n"


def _summary(acc, n=10):
    return {"accuracy": acc, "lo": None if acc is None else acc - 0.1, "hi": None if acc is None else acc + 0.1, "n": n}


def _point(lam, wa, ens):
    diag = 0.6 * (1 - lam) + 0.7 * lam
    curve = {"wa": _summary(wa), "ens": _summary(ens), "diag": diag,
             "wa_minus_diag": {"diff": wa - diag, "lo": -0.1, "hi": 0.1},
             "wa_minus_ens": {"diff": wa - ens, "lo": -0.1, "hi": 0.1}}
    empty = {"wa": _summary(None, 0), "ens": _summary(None, 0), "diag": None,
             "wa_minus_diag": {"diff": None, "lo": None, "hi": None},
             "wa_minus_ens": {"diff": None, "lo": None, "hi": None}}
    return {"lambda": lam, **curve, "agreement": 0.9, "length_adversarial": empty}


def _lmc():
    curves = [_point(0.0, 0.6, 0.6), _point(0.5, 0.72, 0.7), _point(1.0, 0.7, 0.7)]
    split = {"n_pairs": 10, "reward_correlation": 0.8, "curves": curves}
    return {"config": {"model_a": "/runs/x/members/m00", "model_b": "/runs/x/members/m01"},
            "weights": {"l2_a_b": 1.0, "norm_a": 10.0}, "splits": {"id": split, "ood": split}}


def test_plot_curves_writes_a_png_and_no_temporary_file(tmp_path):
    panels = {
        "left": [{"label": "a", "x": [0, 1, 2], "y": [50.0, None, 70.0], "lo": [45, None, 65], "hi": [55, None, 75],
                  "style": {"marker": "o"}}],
        "middle": [{"label": "b", "x": [0, 1], "y": [1, 2], "style": {"linestyle": ":"}}],
        "right": [{"x": [0, 1], "y": [2, 1]}],
        "fourth": [{"label": "c", "x": [0, 1], "y": [3, 3]}],  # a second row with two hidden cells
    }
    path = plot_curves(panels, "x", "accuracy (%)", tmp_path / "fig" / "curves.png", title="t")
    assert path.read_bytes()[:8] == PNG
    assert [p.name for p in path.parent.iterdir()] == ["curves.png"]


def test_plot_curves_refuses_nothing_and_mismatched_series(tmp_path):
    with pytest.raises(WarmError, match="no panels"):
        plot_curves({}, "x", "y", tmp_path / "x.png")
    with pytest.raises(WarmError, match="2 x values but 3 y values"):
        plot_curves({"p": [{"label": "s", "x": [0, 1], "y": [1, 2, 3]}]}, "x", "y", tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_lmc_panels_come_from_the_json_alone(tmp_path):
    lmc = json.loads(json.dumps(_lmc()))  # exactly what a re-plot reads back
    panels = lmc_panels(lmc)
    assert list(panels) == ["id (n=10)", "ood (n=10)"]
    wa, ens, diag = panels["id (n=10)"]
    assert [s["label"] for s in (wa, ens, diag)] == ["WA(λ), 95% CI", "ENS(λ)", "Diag"]
    assert wa["y"] == pytest.approx([60, 72, 70]) and wa["lo"] == pytest.approx([50, 62, 60])
    assert diag["x"] == [0.0, 1.0] and diag["y"] == pytest.approx([60, 70])
    assert ens["style"]["linestyle"] == "--" and diag["style"]["linestyle"] == ":"
    assert plot_lmc(lmc, tmp_path / "lmc.png").read_bytes()[:8] == PNG
    # an empty subset (no length-adversarial pairs) still draws, with no points
    assert lmc_panels(lmc, "length_adversarial")["id (n=0)"][0]["y"] == [None, None, None]
    assert plot_lmc(lmc, tmp_path / "lmc_adv.png", subset="length_adversarial").read_bytes()[:8] == PNG
