"""Where the cells of a sweep run: ``local`` processes, ``dask.distributed`` or ``submitit`` (Slurm).

Each executor is a :class:`concurrent.futures.Executor` (``submit(fn, *args) -> Future``)
and the sweep (:mod:`mdic_lab.experiments.sweep`) does not tell them apart; it gets a
:class:`Plan`, which adds what the sweep must know about the executor:

``workers``   cells that run at the same time;
``threads``   torch CPU threads of one cell (see "Threads" below);
``capture``   how a cell's output reaches its ``log.txt``: ``"fd"`` (file descriptors 1 and 2
              are pointed at the log: the cell owns its process, C-level output is caught too)
              or ``"python"`` (``sys.stdout`` / ``sys.stderr`` are routed per thread: several
              cells share a process, as in a threaded dask worker);
``info``      what ``manifest.json`` records about it.

==============  ==========================================================================
``local``       :class:`concurrent.futures.ProcessPoolExecutor` (``spawn`` start method, or
                ``forkserver``); the default.  Options: ``start_method``, ``threads``.
``dask``        a ``dask.distributed`` client's executor (``Client.get_executor``) on a
                ``LocalCluster`` (default: ``workers`` processes of one task slot each),
                on a running scheduler (``address="tcp://host:8786"``), on a cluster object
                (``cluster=SLURMCluster(...)``) or on a ``dask_jobqueue.SLURMCluster`` built
                here from ``slurm={...}`` (``jobs=N`` jobs).  Options: ``address``,
                ``cluster``, ``slurm``, ``jobs``, ``processes``, ``threads``, ``resources``.
``submitit``    ``submitit.AutoExecutor``: one Slurm job array (``slurm_array_parallelism``
                = ``workers``), or local subprocesses (``cluster="local"``) throttled here to
                ``workers`` jobs at a time (submitit's local executor starts every job at
                once).  Options: ``cluster``, ``folder``, ``threads`` and any
                ``update_parameters`` argument (``timeout_min``, ``slurm_partition``,
                ``gpus_per_node``, ``mem_gb`` ...).
==============  ==========================================================================

Threads.  A cell's torch thread count is *not* part of its config hash: the hashed config
keeps the preset's ``num_threads`` (unless the spec overrides it), and the cell trains with
``num_threads`` replaced by the executor's ``threads``.  The rule that fills a machine
without oversubscribing it: ``workers = min(cells to run, cores)`` and ``threads =
max(1, cores // workers)`` (``cores`` = the CPUs this process may use); each local worker
also gets ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` = ``threads`` before torch is imported.
A resumed cell keeps the thread count recorded in its ``config.json`` (the training loop
refuses a changed training config on resume).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import importlib.util
import multiprocessing
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mdic_lab.config import ConfigError

__all__ = ["EXECUTORS", "Plan", "usable_cores", "default_workers", "check_executor", "make_executor",
           "SubmititExecutor"]

#: executor name -> the options it accepts (beyond ``workers``)
EXECUTORS = {
    "local": ("start_method", "threads", "launcher"),
    "dask": ("address", "cluster", "slurm", "jobs", "processes", "threads", "resources", "launcher"),
    "submitit": ("cluster", "folder", "threads", "poll_s", "launcher"),  # + any update_parameters argument
}


def usable_cores() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


def default_workers(n_cells: int, cores: int | None = None) -> int:
    """``min(n_cells, cores)``, at least 1.

    >>> default_workers(4, 2), default_workers(1, 8), default_workers(0, 8)
    (2, 1, 1)
    """
    cores = usable_cores() if cores is None else cores
    return max(1, min(n_cells, cores))


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """``max(1, cores // workers)``.

    >>> threads_per_worker(2, 8), threads_per_worker(3, 2)
    (4, 1)
    """
    cores = usable_cores() if cores is None else cores
    return max(1, cores // max(1, workers))


@dataclass
class Plan:
    """An executor and what the sweep needs to know about it (see the module docstring)."""

    name: str
    executor: cf.Executor
    workers: int
    threads: int
    capture: str  # "fd" | "python"
    info: dict = field(default_factory=dict)
    _close: Callable[[], None] | None = None

    def close(self, cancel: bool = False) -> None:
        """Shut the executor down and free what it started.  ``cancel`` (Ctrl-C): drop the cells not
        started yet and end the local worker processes, so that none picks up a queued cell; their
        cells keep their last checkpoint."""
        if cancel and isinstance(self.executor, cf.ProcessPoolExecutor):
            procs = list((getattr(self.executor, "_processes", None) or {}).values())
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.terminate()
            for proc in procs:  # gone before the tables are written: their claims read as stale
                with contextlib.suppress(Exception):
                    proc.join(timeout=5)
        # the sweep closes after every future resolved (or on an interrupt): no need to wait for the
        # workers to exit (a local worker takes a second or more to unload torch)
        try:
            try:
                self.executor.shutdown(wait=False, cancel_futures=cancel)
            except TypeError:  # dask's ClientExecutor: no cancel_futures (closing the client cancels)
                self.executor.shutdown(wait=False)
        finally:
            if self._close is not None:
                self._close()


def check_executor(name, options: dict | None = None, workers=None, imports: bool = True) -> None:
    """Refuse an unknown executor, an unknown option of a known one, a bad ``workers``, or (``imports``)
    an executor whose packages are not installed."""
    if name not in EXECUTORS:
        raise ConfigError(f"unknown executor {name!r} (expected one of: {', '.join(EXECUTORS)})")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a positive int, got {workers!r}")
    options = dict(options or {})
    if name != "submitit":  # submitit accepts every update_parameters argument: submitit itself checks them
        for key in options:
            if key not in EXECUTORS[name]:
                raise ConfigError(f"unknown option {key!r} of the {name} executor "
                                  f"(expected one of: {', '.join(EXECUTORS[name])})")
    threads = options.get("threads")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a positive int, got {threads!r}")
    if name == "local" and options.get("start_method", "spawn") not in ("spawn", "forkserver"):
        raise ConfigError(f"unknown start_method {options['start_method']!r} of the local executor "
                          "(expected one of: spawn, forkserver; fork is unsafe with torch threads)")
    if name == "dask" and sum(options.get(k) is not None for k in ("address", "cluster", "slurm")) > 1:
        raise ConfigError("the dask executor takes one of address=, cluster= or slurm=, not several")
    needs = {"dask": ["distributed"] + (["dask_jobqueue"] if options.get("slurm") is not None else []),
             "submitit": ["submitit"]}.get(name, [])
    missing = [m for m in needs if imports and importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"the {name} executor needs {', '.join(missing)}: pip install 'mdic-lab[cluster]'")


def make_executor(name: str, *, n_cells: int, workers: int | None = None, folder=None, **options) -> Plan:
    """The :class:`Plan` of executor ``name`` for ``n_cells`` cells (``folder``: where it may keep files)."""
    check_executor(name, options, workers)
    if name == "local":
        return _local(n_cells, workers, **options)
    if name == "dask":
        return _dask(n_cells, workers, **options)
    return _submitit(n_cells, workers, folder, **options)


# ----------------------------------------------------------------------------- local
def _init_worker(threads: int) -> None:
    """Runs first in every local worker process: the thread budget, before torch is imported, and a
    watchdog that ends the worker when the sweep process is gone (killed with SIGKILL, say); the
    cell it was running keeps its last checkpoint and its claim becomes stale (dead pid)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(70)

    threading.Thread(target=watch, name="sweep-parent-watchdog", daemon=True).start()


def _local(n_cells, workers, start_method: str = "spawn", threads: int | None = None) -> Plan:
    cores = usable_cores()
    workers = workers or default_workers(n_cells, cores)
    threads = threads or threads_per_worker(workers, cores)
    ex = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(start_method),
                                initializer=_init_worker, initargs=(threads,))
    return Plan("local", ex, workers, threads, "fd",
                {"executor": "local", "start_method": start_method, "workers": workers, "threads": threads,
                 "cores": cores})


# ----------------------------------------------------------------------------- dask
def _dask(n_cells, workers, address=None, cluster=None, slurm=None, jobs=None, processes: bool = True,
          threads: int | None = None, resources: dict | None = None) -> Plan:
    from distributed import Client

    own_cluster = None
    info = {"executor": "dask"}
    if cluster is not None:
        client = Client(cluster)
        info["cluster"] = type(cluster).__name__
    elif address is not None:
        client = Client(address)
        info["address"] = str(address)
    elif slurm is not None:
        from dask_jobqueue import SLURMCluster

        kw = dict(slurm)
        cores = int(kw.get("cores", 1))
        nproc = int(kw.get("processes", 1))
        # one cell at a time per worker process, which gets all of its cores as torch threads
        kw["worker_extra_args"] = [*kw.get("worker_extra_args", []), "--resources", "cell=1"]
        own_cluster = SLURMCluster(**kw)
        own_cluster.scale(jobs=jobs or workers or 1)
        client = Client(own_cluster)
        resources = resources or {"cell": 1}
        threads = threads or max(1, cores // nproc)
        workers = (jobs or workers or 1) * nproc
        info.update(cluster="SLURMCluster", slurm={k: v for k, v in kw.items()}, jobs=jobs or 1)
    else:
        from distributed import LocalCluster

        cores = usable_cores()
        workers = workers or default_workers(n_cells, cores)
        threads = threads or threads_per_worker(workers, cores)
        # one task slot per worker; the cell's torch threads are set in the cell
        own_cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes,
                                   dashboard_address=None)
        client = Client(own_cluster)
        info.update(cluster="LocalCluster", processes=processes)
    if workers is None:  # an existing cluster: one cell per task slot
        slots = [w.get("nthreads", 1) for w in client.scheduler_info().get("workers", {}).values()]
        workers = max(1, sum(slots))
    threads = threads or 1
    single = all(w.get("nthreads", 1) == 1 for w in client.scheduler_info().get("workers", {}).values())
    capture = "fd" if (single or resources) and processes else "python"
    # pure=False: a retried cell is a new task, not the cached result of the first try
    ex = client.get_executor(pure=False, **({"resources": resources} if resources else {}))
    info.update(workers=workers, threads=threads, resources=resources, capture=capture)

    def close():
        client.close()
        if own_cluster is not None:
            own_cluster.close()

    return Plan("dask", ex, workers, threads, capture, info, close)


# ----------------------------------------------------------------------------- submitit
class SubmititExecutor(cf.Executor):
    """:class:`concurrent.futures.Executor` over ``submitit.AutoExecutor``.

    On Slurm, what is pending is submitted as one job array whose parallelism is
    ``workers`` (``slurm_array_parallelism``); in local mode at most ``workers`` jobs run at
    once (submitit's local executor would start them all).  A thread polls the jobs and
    completes the futures.
    """

    def __init__(self, folder, *, workers: int, cluster: str | None = None, poll_s: float = 0.5, **parameters):
        import submitit

        self._ex = submitit.AutoExecutor(folder=str(Path(folder) / "%j"), cluster=cluster)
        self.cluster = self._ex.cluster
        self.workers = int(workers)
        self._local = self.cluster in ("local", "debug")
        params = {"timeout_min": 24 * 60, **parameters}
        if not self._local:
            params.setdefault("slurm_array_parallelism", self.workers)
        self._ex.update_parameters(**params)
        self._pending: queue.Queue = queue.Queue()
        self._running: dict = {}  # job -> Future
        self._lock = threading.Lock()
        self._shutdown = False
        self._poll_s = poll_s
        self._thread = threading.Thread(target=self._loop, name="submitit-executor", daemon=True)
        self._thread.start()

    def submit(self, fn, /, *args, **kwargs):
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")
        fut: cf.Future = cf.Future()
        self._pending.put((fut, fn, args, kwargs))
        return fut

    def _take_pending(self, limit: int | None) -> list:
        out = []
        while limit is None or len(out) < limit:
            try:
                item = self._pending.get_nowait()
            except queue.Empty:
                break
            if item[0].set_running_or_notify_cancel():
                out.append(item)
        return out

    def _start(self, items) -> None:
        if not items:
            return
        try:
            if self._local:
                jobs = [self._ex.submit(fn, *a, **kw) for _, fn, a, kw in items]
            else:
                with self._ex.batch():  # one job array
                    jobs = [self._ex.submit(fn, *a, **kw) for _, fn, a, kw in items]
        except BaseException as exc:  # the submission itself failed (sbatch error ...)
            for fut, *_ in items:
                fut.set_exception(exc)
            return
        with self._lock:
            for job, (fut, *_) in zip(jobs, items):
                self._running[job] = fut

    def _loop(self) -> None:
        while True:
            with self._lock:
                n_running = len(self._running)
            if self._shutdown and not n_running and self._pending.empty():
                return
            if not self._shutdown:
                free = max(0, self.workers - n_running) if self._local else None
                self._start(self._take_pending(free))
            with self._lock:
                finished = [j for j in self._running if j.done()]
            for job in finished:
                with self._lock:
                    fut = self._running.pop(job)
                try:
                    fut.set_result(job.result())
                except BaseException as exc:  # FailedJobError, UncompletedJobError ...
                    fut.set_exception(exc)
            time.sleep(self._poll_s)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if cancel_futures:
            while True:
                try:
                    fut, *_ = self._pending.get_nowait()
                except queue.Empty:
                    break
                fut.cancel()
            with self._lock:
                jobs = list(self._running)
            for job in jobs:
                try:
                    job.cancel(check=False)
                except Exception:  # noqa: BLE001 -- best effort on the way out
                    pass
        self._shutdown = True
        if wait:
            self._thread.join()


def _submitit(n_cells, workers, folder, cluster=None, threads: int | None = None, poll_s: float = 0.5,
              **parameters) -> Plan:
    import submitit

    if folder is None:
        raise ValueError("the submitit executor needs a folder for its job files")
    cluster = cluster or submitit.AutoExecutor.which()  # "slurm" where srun exists, else "local"
    local = cluster in ("local", "debug")
    if local:
        cores = usable_cores()
        workers = workers or default_workers(n_cells, cores)
        threads = threads or threads_per_worker(workers, cores)
    else:
        workers = workers or n_cells or 1
        threads = threads or int(parameters.get("cpus_per_task", 1))
    parameters.setdefault("cpus_per_task", threads)
    ex = SubmititExecutor(folder, workers=workers, cluster=cluster, poll_s=poll_s, **parameters)
    return Plan("submitit", ex, workers, threads, "fd",
                {"executor": "submitit", "cluster": ex.cluster, "workers": workers, "threads": threads,
                 "parameters": {k: v for k, v in parameters.items()}, "folder": str(folder)})
