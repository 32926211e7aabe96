"""`warm train --launcher ray`: each unfinished member is one Ray task, so M members train on M GPUs at once.

Only *how members are executed* differs from the local executor (warm.train.executors.run_local): the plan,
the data, the resume rule (`finished_member`), the member's training (`train_member`) and the run directory
layout are the same code. The driver tokenises the pairs once and puts them in Ray's object store (`ray.put`),
so workers need no access to the training data; each task writes RUN/members/NAME itself, so the run directory
must be on a filesystem that the driver and every Ray node see at the same path (NFS, Lustre, a shared volume);
warm itself must be installed on every node.

Failures: a task that raises, or whose worker dies, is retried once (Ray's `max_retries=1` with
`retry_exceptions=True`); a member that fails twice is reported after the others have finished, and rerunning
`warm train` retrains only the members without a finished directory, as with the local launcher.
"""

from __future__ import annotations

import warnings
from typing import Callable

from tqdm.auto import tqdm

from warm.errors import WarmError
from warm.train.executors import MemberExecutor, PreparedRun, describe
from warm.train.member import member_dir, train_member

MAX_RETRIES = 1


def train_member_task(run_dir: str, plan: dict, member: dict, pairs, margins) -> dict:
    """What a Ray worker runs for one member (progress bars off: many workers share the driver's log)."""
    return train_member(run_dir, plan, member, pairs, margins, progress=False)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise WarmError("--launcher ray needs the ray package (pip install 'warm-rm[ray]')") from None
    return ray


def _reason(exc: Exception) -> str:
    cause = getattr(exc, "cause", None) or exc
    lines = [line for line in str(cause).strip().splitlines() if line.strip()]
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}".rstrip(": ")


def ray_executor(
    address: str | None = None,
    gpus_per_member: float = 0.0,
    cpus_per_member: float = 1.0,
    task: Callable[..., dict] = train_member_task,
) -> MemberExecutor:
    """A MemberExecutor running each member as `task` in a Ray task with the given resources.

    Joins the cluster at `address` (e.g. "auto"), or the Ray instance this process already started, or starts a
    local one (shut down again at the end). `task` is replaceable for tests; it takes train_member_task's arguments.
    """
    ray = _import_ray()
    if gpus_per_member < 0:
        raise WarmError(f"--gpus-per-member {gpus_per_member:g}: must be >= 0")
    if cpus_per_member <= 0:
        raise WarmError(f"--cpus-per-member {cpus_per_member:g}: must be positive")

    def execute(run: PreparedRun, pending: list[dict], done: Callable[[dict, dict], None], progress: bool) -> None:
        if not pending:
            return
        started = not ray.is_initialized()
        if started and address:
            ray.init(address=address)
        elif started:
            ray.init(include_dashboard=False)
        try:
            available = ray.cluster_resources().get("GPU", 0)
            if gpus_per_member > available:  # an autoscaling cluster may add GPUs later; a fixed one never will
                warnings.warn(f"--gpus-per-member {gpus_per_member:g}: the Ray cluster has {available:g} GPU(s) now; "
                              "member tasks wait until enough GPUs join", stacklevel=2)
            remote = ray.remote(task)
            resources = dict(num_gpus=gpus_per_member, num_cpus=cpus_per_member, max_retries=MAX_RETRIES,
                             retry_exceptions=True)
            pairs = ray.put(run.pairs)  # one copy in the object store, shared by every task on a node
            futures = {}
            for member in pending:
                tqdm.write(describe(member) + " (Ray task)")
                ref = remote.options(name=f"warm-train-{member['name']}", **resources).remote(
                    str(run.run_dir.resolve()), run.plan, member, pairs, run.margins)  # workers' cwd differs
                futures[ref] = member
            failed = []
            with tqdm(total=len(pending), desc="members", unit="member", disable=not progress) as bar:
                while futures:
                    ready, _ = ray.wait(list(futures), num_returns=1)
                    member = futures.pop(ready[0])
                    try:
                        payload = ray.get(ready[0])
                    except ray.exceptions.RayError as exc:
                        failed.append((member, _reason(exc)))
                        bar.write(f"{member['name']}: failed after {MAX_RETRIES} retry ({failed[-1][1]})")
                    else:
                        done(member, payload)
                    bar.update(1)
            if failed:
                member, reason = failed[0]
                others = f" and {len(failed) - 1} other member(s)" if len(failed) > 1 else ""
                raise WarmError(f"{member_dir(run.run_dir, member['name'])}: training failed on Ray{others} "
                                f"({reason}); rerun `warm train` to retry the unfinished members")
        finally:
            if started:
                ray.shutdown()

    return execute
