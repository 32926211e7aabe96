"""The monitor's alarm rules (warm.apply.rl.alarms) on constructed histories: when they fire, what they call the last
good step, and how rarely they fire on noise."""

import numpy as np
import pytest

from warm.apply.rl.alarms import AlarmRules, check_alarm, item_slopes
from warm.errors import WarmError

N = 16  # probe prompts


def history(proxy, control=None, std=None, every=2, noise=0.3, seed=0, threshold=None):
    """Probes at steps 0, every, 2 every...: per prompt, the given mean plus independent noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, p in enumerate(proxy):
        items = {"proxy": (p + noise * rng.standard_normal(N)).tolist(),
                 "control": None if control is None else (control[k] + noise * rng.standard_normal(N)).tolist(),
                 "member_std": None if std is None else std[k].tolist()}
        rows.append({"step": k * every, "items": items, "threshold": threshold})
    return rows


def first_alarm(rows, rules=AlarmRules()):
    """The alarm at the first probe where one is raised, as the monitor sees it probe by probe."""
    for k in range(1, len(rows) + 1):
        alarm = check_alarm(rows[:k], rules)
        if alarm is not None:
            return alarm
    return None


def test_slopes_are_per_prompt_least_squares():
    rows = [{"step": s, "items": {"proxy": [2.0 * s, 5.0, -s]}} for s in (0, 2, 6)]
    np.testing.assert_allclose(item_slopes(rows, "proxy"), [2.0, 0.0, -1.0])
    assert item_slopes(rows, "control") is None


def test_control_rule_fires_within_a_bound_after_the_peak_and_names_the_peak():
    peak = 6  # control rises for 6 probes, then falls; the proxy rises all along
    control = [0.2 * k if k <= peak else 0.2 * peak - 0.3 * (k - peak) for k in range(16)]
    proxy = [0.5 * k for k in range(16)]
    rows = history(proxy, control)
    alarm = first_alarm(rows)
    rules = AlarmRules()
    assert alarm["rule"] == "control" and alarm["last_good_step"] == peak * 2
    # the fall is seen once `window` probes span it, and held for `patience`
    assert peak * 2 < alarm["step"] <= (peak + rules.window + rules.patience - 1) * 2
    assert alarm["evidence"]["control_slope"] < -rules.z * alarm["evidence"]["control_slope_sem"] < 0
    assert "the control fell" in alarm["reason"] and f"last good step {peak * 2}" in alarm["reason"]


@pytest.mark.parametrize("case", ["flat control", "both fall", "control rises"])
def test_control_rule_is_silent_without_hacking(case):
    k = np.arange(16)
    proxy, control = {"flat control": (0.5 * k, 0 * k), "both fall": (-0.3 * k, -0.3 * k),
                      "control rises": (0.5 * k, 0.2 * k)}[case]
    assert first_alarm(history(proxy, control)) is None


def test_control_rule_rarely_fires_on_noise_and_a_looser_rule_would():
    """A flat control under a rising proxy: the default 3-sigma rule over 4 probes, held for 2, stays silent in
    almost every run of 30 probes; a 1-sigma rule held for 1 probe does not (so the test can tell them apart)."""
    k = np.arange(30)
    runs = [history(0.1 * k, 0 * k, noise=1.0, seed=seed) for seed in range(100)]
    strict = sum(first_alarm(rows) is not None for rows in runs)
    loose = sum(first_alarm(rows, AlarmRules(z=1.0, patience=1)) is not None for rows in runs)
    assert strict <= 5 and loose >= 50


def test_disagreement_rule_counts_responses_beyond_the_calibrated_threshold():
    rng = np.random.default_rng(0)
    # members' std per response: usual (below the threshold 1.0) for 5 probes, then more and more beyond it
    beyond = [0, 0, 1, 0, 1, 3, 5, 8, 12, 16]
    std = [np.concatenate([rng.uniform(1.5, 3.0, b), rng.uniform(0.0, 0.9, N - b)]) for b in beyond]
    rows = history([0.0] * len(beyond), std=std, threshold=1.0)
    alarm = first_alarm(rows)
    # 5/16 - 0 >= 0.25 first at probe 6, held at probe 7 (patience 2); the last probe before: 5
    assert alarm["rule"] == "disagreement" and alarm["step"] == 7 * 2 and alarm["last_good_step"] == 5 * 2
    assert alarm["evidence"] == {"threshold": 1.0, "share_beyond": 0.5, "first_share_beyond": 0.0}
    # with a control, the last good step is its best probe before the evidence began
    control = [0.0, 0.3, 0.5, 0.4, 0.2, 0.1, 0.0, -0.1, -0.2, -0.3]
    with_control = history([0.0] * len(beyond), control=control, std=std, threshold=1.0, noise=0.0)
    assert first_alarm(with_control)["last_good_step"] == 2 * 2
    # no threshold (no members calibrated): the rule cannot speak
    assert first_alarm(history([0.0] * len(beyond), std=std)) is None


@pytest.mark.parametrize("changes, words", [
    ({"window": 1}, "window must be >= 2"), ({"patience": 0}, "patience >= 1"), ({"z": 0.0}, "z must be positive"),
    ({"quantile": 1.0}, "quantile must be in"), ({"fraction": 0.0}, "fraction in"),
])
def test_rule_bounds(changes, words):
    with pytest.raises(WarmError, match=words):
        AlarmRules(**changes)
