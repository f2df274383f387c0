"""Learning-curve plots from metrics.jsonl."""

import subprocess
import sys

import jax
import matplotlib.image
import pytest
import realax.log as rlog
from jax import lax


def _log_run(tmp_path, toy, seeds=None):
    ToyState, toy_step = toy
    logger = rlog.Logger(wandb_log=False, metrics_fn=rlog.default_grad_metrics, log_dir=tmp_path)

    def run(state):
        def body(state, _):
            state, metrics = toy_step(state)
            logger.log(state, metrics)
            return state, None

        return lax.scan(body, state, None, length=20)[0]

    if seeds is None:
        jax.jit(run)(ToyState.create(key=jax.random.key(0)))
    else:
        keys = jax.random.split(jax.random.key(0), seeds)
        jax.jit(jax.vmap(run))(jax.vmap(lambda k: ToyState.create(key=k))(keys))
    logger.finish()


def test_plot_writes_a_png_with_one_panel_per_metric(tmp_path, toy):
    _log_run(tmp_path, toy)
    out = rlog.plot(tmp_path)
    assert out == tmp_path / "learning_curves.png"
    image = matplotlib.image.imread(out)
    # loss, best_loss: two panels side by side (4.2 in wide each at 100 dpi).
    assert image.shape[:2] == (300, 840)
    assert image[..., :3].std() > 0.05  # not a blank canvas


def test_plot_selected_metric_per_seed_to_a_chosen_path(tmp_path, toy):
    _log_run(tmp_path, toy, seeds=3)
    out = rlog.plot(tmp_path / "metrics.jsonl", metrics=["loss"], out=tmp_path / "p" / "c.png")
    assert matplotlib.image.imread(out).shape[:2] == (300, 420)
    with pytest.raises(ValueError, match=r"metrics \['nope'\] are not numeric scalars"):
        rlog.plot(tmp_path, metrics=["nope"])


def test_plot_without_matplotlib_names_the_extra(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "import realax.log as rlog\n"
        "try:\n"
        f"    rlog.plot({str(tmp_path)!r})\n"
        "except ImportError as e:\n"
        "    print('IMPORT-ERROR:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'IMPORT-ERROR: realax.log.plot needs matplotlib: pip install "realax-log[plot]"' in (
        out.stdout
    )
