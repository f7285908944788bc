"""Permissions of what pfswatchd creates: files and folders get ``service.file_mode``,
``service.dir_mode`` and, when set, ``service.group``.

Applies to copies in the datastore (copy, and move across filesystems), the folders pfswatchd makes in
the datastore, the quarantine and the extraction folder, extracted files, and quarantine reason files.
Hard and symbolic links share their source's inode, so they keep the source's permissions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Permissions:
    file_mode: int = 0o644
    dir_mode: int = 0o755
    gid: int | None = None  # None: the process's group

    def file(self, path: Path | str) -> None:
        os.chmod(path, self.file_mode)
        if self.gid is not None:
            os.chown(path, -1, self.gid)

    def folder(self, path: Path | str) -> None:
        os.chmod(path, self.dir_mode)
        if self.gid is not None:
            os.chown(path, -1, self.gid)

    def makedirs(self, path: Path) -> None:
        """Create ``path`` and any missing parents, each with these permissions (umask ignored)."""
        missing = []
        current = path
        while not current.exists():
            missing.append(current)
            if current.parent == current:
                break
            current = current.parent
        for folder in reversed(missing):
            try:
                folder.mkdir(mode=self.dir_mode & 0o777)  # never wider than dir_mode, even before chmod
            except FileExistsError:
                continue  # made meanwhile by another process: leave its permissions alone
            self.folder(folder)


DEFAULT = Permissions()
