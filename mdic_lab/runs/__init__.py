"""The run stack every codec shares (design map: ``runs/``).

==============  ==================================================================
``rundir``      :class:`RunDir`: a run folder (config.json, metrics.csv, checkpoint.pt,
                eval/); the one reader of ``config.json``
``data``        training pairs held in memory (:class:`PairBank`, :class:`LatentBank`)
``codecs``      per-codec hooks: batch, loss, optimiser schedule, coding (named by the
                registry)
``train``       one training loop (accelerate) for every codec: :func:`train_run`
``evaluate``    one evaluation loop: :func:`evaluate_run` (bytes → image → metrics)
``coding``      :func:`load_run`, one image through compress / decompress (the CLI's)
==============  ==================================================================

Modules are imported on use: ``import mdic_lab.runs`` loads no torch.
"""

from .rundir import RunDir, RunError

__all__ = ["RunDir", "RunError", "train_run", "evaluate_run", "load_run"]


def __getattr__(name):
    if name == "train_run":
        from .train import train_run

        return train_run
    if name == "evaluate_run":
        from .evaluate import evaluate_run

        return evaluate_run
    if name == "load_run":
        from .coding import load_run

        return load_run
    raise AttributeError(name)
