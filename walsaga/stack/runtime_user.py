"""Who the stack's processes run as. Started by a normal user, they run as that user. Started by root (CI, a
server), every process but PostgreSQL (which runs as Debian's `postgres`) runs as the unprivileged `walsaga`
system user that `make install` creates: none of them needs root, so none keeps it. Their files are theirs and
nobody else's (umask 027; the stack home's directories 0700, data 0711 so PostgreSQL reaches its clusters)."""
from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import Callable
from pathlib import Path

NAME = "walsaga"
UMASK = 0o027


def account(name: str | None = None) -> pwd.struct_passwd | None:
    """The account to switch to (the runtime user, or `name`), or None when this process is not root (nothing to
    drop)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(name or NAME)
    except KeyError:
        raise RuntimeError(f"there is no `{name or NAME}` user to run the stack as: run `make install` (as root) "
                           "first") from None


def dropper(acct: pwd.struct_passwd | None) -> Callable[[], None]:
    """What a child runs before exec (after anything that needed root, like a negative nice) to become `acct` (from
    `account()`, looked up in the parent: a forked child of a threaded process should do no more than system calls,
    and the user database lookup may take locks another thread held at the fork)."""
    def drop() -> None:
        if acct is not None:
            os.setgroups([])
            os.setgid(acct.pw_gid)
            os.setuid(acct.pw_uid)
        os.umask(UMASK)
    return drop


def own(path: Path, mode: int | None = None) -> None:
    """Gives `path` to the runtime user (when root), and `mode` if given."""
    acct = account()
    if acct is not None:
        os.chown(path, acct.pw_uid, acct.pw_gid)
    if mode is not None:
        path.chmod(mode)


def own_tree(root: Path) -> None:
    """`root` and everything under it, closed to others: for a home made before the stack ran as its own user."""
    acct = account()
    for path in (root, *root.rglob("*")):
        if path.is_symlink():
            continue
        if acct is not None:
            shutil.chown(path, acct.pw_uid, acct.pw_gid)
        mode = path.stat().st_mode
        if mode & 0o007:
            path.chmod(mode & ~0o007)


def write_private(path: Path, text: str, shared: bool = True) -> Path:
    """Writes a file only its owner reads (a rendered config, maybe with passwords), 0600, replaced atomically: the
    runtime user's when `shared` (the stack's processes read it), else whoever writes it (root's token key)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    if shared:
        own(tmp, 0o600)
    else:
        tmp.chmod(0o600)
    tmp.replace(path)
    return path
