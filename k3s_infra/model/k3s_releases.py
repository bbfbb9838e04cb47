"""The K3s releases k3s-infra knows, as data: what ``k3s-infra upgrade`` (and ``plan`` after an edit of
k3s.version) accepts as a target (deploy/upgrade_checks.py, rule ``release-channel``).

K3s's channel server (https://update.k3s.io/v1-release/channels) derives its channels from the
GitHub releases of k3s-io/k3s: one channel per Kubernetes minor pointing at that minor's newest
release, plus ``stable`` and ``latest`` (https://docs.k3s.io/upgrades/manual, "Release Channels").
This table pins those releases as of AS_OF, compiled from the K3s release notes
(https://docs.k3s.io/release-notes/v1.XX.X, k3s-io/docs docs/release-notes/) and the release pages
(https://github.com/k3s-io/k3s/releases/tag/<version>): per minor, the first and the newest patch
seen there, every patch in between taken as ``+k3s1``, and the re-releases the notes list
(``+k3s2``, ``+k3s3``). The newest release those sources show is v1.37.1+k3s1 (30 Sep 2026): a
later one is unknown here until this table is updated (``upgrade --skip-check release-channel``
after checking its release page).
"""

from __future__ import annotations

AS_OF = "2026-12-04"
CHANNELS_URL = "https://update.k3s.io/v1-release/channels"
RELEASES_URL = "https://github.com/k3s-io/k3s/releases"

# Kubernetes minor -> (first patch, newest patch, re-releases beyond +k3s1). 1.34 starts at .1:
# "v1.34.1+k3s1 ... This is the first k3s release in the 1.34 release line" (its release notes).
_MINORS: dict[str, tuple[int, int, tuple[str, ...]]] = {
    "1.30": (0, 14, ("v1.30.14+k3s2",)),
    "1.31": (0, 14, ()),
    "1.32": (0, 13, ()),
    "1.33": (0, 13, ("v1.33.13+k3s2",)),
    "1.34": (1, 12, ()),
    "1.35": (0, 9, ("v1.35.0+k3s3",)),
    "1.36": (0, 5, ()),
    "1.37": (0, 1, ()),
}
# The channel server's named channels on that date (K3s PR "Update stable channel to ...").
STABLE = "v1.36.5+k3s1"
LATEST = "v1.37.1+k3s1"


def _versions(minor: str, first: int, newest: int, extra: tuple[str, ...]) -> tuple[str, ...]:
    """Oldest first: each patch's +k3s1, a re-release right after the release it replaces."""
    found = [f"v{minor}.{patch}+k3s1" for patch in range(first, newest + 1)]
    return tuple(sorted(found + list(extra), key=lambda v: [int(n) for n in v[1:].replace("+k3s", ".").split(".")]))


RELEASES: dict[str, tuple[str, ...]] = {minor: _versions(minor, *row) for minor, row in _MINORS.items()}


def newest(minor: str) -> str | None:
    """The release the channel of ``minor`` (e.g. '1.34') points at, or None for a minor not known."""
    return RELEASES[minor][-1] if minor in RELEASES else None


def known(version: str) -> bool:
    return any(version in versions for versions in RELEASES.values())
