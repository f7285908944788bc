"""Header corrections: the fixes the official ingest applies to historical raw headers.

Some historical PFS headers are wrong (a botched W_PFDSGN, lamps not recorded, ...).
obs_pfs's ingest corrects them before it computes anything: astro_metadata_translator's
``fix_header`` looks for a YAML file ``<instrument>-<W_VISIT>.yaml`` (``PFS-115821.yaml``,
``PFS-L-16804.yaml``) and updates the header with the mapping it holds.  obs_pfs generates
its ``corrections/`` folder from pfs_utils' ``headerFixes.py``; they change design ids,
group names and lamps of visits up to late 2024 (obs_pfs_ingest.md §4).

pfswatchd applies the same files with the same library, looked for, first found wins, in:
the configured folders (``ingest.header_corrections``), ``$METADATA_CORRECTIONS_PATH``
(what astro_metadata_translator itself reads), and obs_pfs's own folder when obs_pfs is
importable.  Only raws are corrected: ``ingestPfsConfig.py`` corrects no pfsConfig.

A file that has no correction costs one stat per folder; only a corrected one has all its
cards parsed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from astro_metadata_translator import fix_header
from astro_metadata_translator.translators import SubaruTranslator

from pfswatchd.files.fitsheader import Header
from pfswatchd.files.names import instrument_for_site


class _CorrectionNames(SubaruTranslator):
    """Just enough of obs_pfs's PfsTranslator for ``fix_header`` to name the correction file.

    The same observation id (``str(W_VISIT)``) and instrument (``PFS`` for site S, else ``PFS-<site>``)
    as obs_pfs's translator.py.  It has no ``name``, so astro_metadata_translator does not register it
    as a translator of PFS headers.
    """

    supported_instrument = "PFS"

    def to_observation_id(self) -> str:
        return str(self._header["W_VISIT"])

    def to_instrument(self) -> str:
        return instrument_for_site(str(self._header["W_SITE"]))


@lru_cache(maxsize=1)
def obs_pfs_folders() -> tuple[Path, ...]:
    """obs_pfs's ``corrections/`` (its translator's default search path), when obs_pfs is importable."""
    try:
        from lsst.obs.pfs.translator import PfsTranslator
    except Exception:  # not installed, or its C++ stack is not (ImportError, or anything it raises)
        return ()
    return tuple(Path(p) for p in getattr(PfsTranslator, "default_search_path", None) or ())


def environment_folders() -> tuple[Path, ...]:
    """``$METADATA_CORRECTIONS_PATH``, as astro_metadata_translator splits it."""
    value = os.environ.get("METADATA_CORRECTIONS_PATH", "")
    return tuple(Path(p) for p in value.split(os.pathsep) if p)


@dataclass(frozen=True, slots=True)
class HeaderCorrections:
    """Where correction files are looked for, in order; picklable (the examiner's workers get a copy)."""

    folders: tuple[Path, ...] = field(default_factory=tuple)

    @classmethod
    def standard(cls, configured: tuple[Path, ...] = ()) -> HeaderCorrections:
        """The configured folders, then $METADATA_CORRECTIONS_PATH, then obs_pfs's when importable."""
        folders: list[Path] = []
        for folder in (*configured, *environment_folders(), *obs_pfs_folders()):
            if folder not in folders:
                folders.append(folder)
        return cls(tuple(folders))

    def file_for(self, header: Mapping[str, Any]) -> Path | None:
        """The correction file that applies to ``header`` (a scanned Header or plain cards), or None."""
        if not self.folders:
            return None
        site, visit = _card(header, "W_SITE"), _card(header, "W_VISIT")
        if not isinstance(site, str) or not isinstance(visit, int) or isinstance(visit, bool):
            return None  # classify refuses such a raw with its own reason
        name = f"{instrument_for_site(site.strip())}-{visit}.yaml"
        for folder in self.folders:
            candidate = folder / name
            if candidate.is_file():
                return candidate
        return None

    def correct(self, cards: MutableMapping[str, Any], path: Path | str) -> Path | None:
        """Apply the correction file of ``cards`` to them in place, as ``fix_header`` does (with its
        provenance cards, ``HIERARCH ASTRO METADATA FIX ...``); the file applied, or None."""
        found = self.file_for(cards)
        if found is None:
            return None
        fix_header(cards, search_path=[str(folder) for folder in self.folders], translator_class=_CorrectionNames,
                   filename=str(path))
        return found

    def apply(self, header: Header, path: Path) -> Header:
        """``header`` with its correction applied (itself when none applies)."""
        if self.file_for(header) is None:
            return header
        cards: dict[str, Any] = {}
        for key in header:
            try:
                cards[key] = header[key]
            except ValueError:
                continue  # a malformed card: classify treats it as absent, so it stays absent
        self.correct(cards, path)
        return Header.from_cards(cards)


def _card(header: Mapping[str, Any], key: str) -> Any:
    """A card's value, None when absent (or, in a scanned Header, malformed)."""
    if isinstance(header, Header):
        return header.value(key)
    return header.get(key)


NONE = HeaderCorrections()
