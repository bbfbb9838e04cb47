"""How the stack's lock (k3s_infra/deploy/lock.py) reads when it is taken over, forced, lost or
left behind (cli/progress.py prints these lines as the messages arrive)."""

from __future__ import annotations

from k3s_infra.deploy import lock


def lock_lines(message: lock.LockTakenOver | lock.LockRemoved | lock.LockLost | lock.LockNotReleased) -> list[str]:
    match message:
        case lock.LockTakenOver(holder=holder, where=where):
            return [f"warning: took over an expired lock ({where}): {holder.describe()}, expired "
                    f"{holder.expires:%Y-%m-%d %H:%M:%S} UTC"]
        case lock.LockRemoved(holder=holder, existed=existed, where=where):
            held = holder.describe() if holder else "an unreadable lock object"
            return [f"--force-unlock: removed the lock of {held} ({where})" if existed else
                    f"--force-unlock: there was no lock ({where})"]
        case lock.LockLost(where=where):
            return [f"warning: the lock {where} was replaced or removed (--force-unlock?): another run may start now"]
    return [f"warning: the lock {message.where} was not released ({message.problem}): it expires within "
            f"{lock.LEASE.seconds // 60} minutes, or --force-unlock removes it"]  # LockNotReleased
