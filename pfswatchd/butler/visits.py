"""Visit records for this repository: obs_pfs's values, this universe's columns, nothing cut.

:func:`pfswatchd.files.visitrecord.visit_values` computes every value as obs_pfs does; here
they become a record of the repository's own universe (its stored "pfs v3" shape has 17 or
18 visit columns: ``irp_ratio`` only in the newer one, as obs_pfs's gen3.py keeps only the
fields the universe has), and a later raw of the visit is compared with the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from lsst.daf.butler import DimensionRecord, DimensionUniverse, Timespan

from pfswatchd.errors import BadHeaderError, first_line
from pfswatchd.files.visitrecord import TIMESPAN_NSEC, compared_values, visit_values
from pfswatchd.model import FileKind, RawFile


@dataclass(frozen=True, slots=True)
class VisitState:
    """What the registry (or this batch) says about a visit."""

    record: DimensionRecord
    source: str  # the file that defined it, for messages; "registry" when it was already there
    source_kind: FileKind | None = None  # the camera kind of that file (None: not known)

    @classmethod
    def from_registry(cls, record: DimensionRecord) -> VisitState:
        """A record already in the registry.  Where the universe has irp_ratio, it tells which camera
        defined the record (NIR ramps carry W_H4IRPN, CCD frames do not); otherwise that is unknown."""
        if "irp_ratio" not in record.definition.metadata.names:
            return cls(record, "registry", None)
        nir = record.irp_ratio is not None
        return cls(record, "registry", FileKind.RAW_NIR if nir else FileKind.RAW_CCD)

    @property
    def design(self) -> int:
        return cast(int, self.record.pfs_design_id)

    @property
    def dither(self) -> int:
        return cast(int, self.record.dither)


class VisitRecords:
    """Builds and compares visit records for one universe."""

    def __init__(self, universe: DimensionUniverse) -> None:
        visit = universe["visit"]
        self.record_class = visit.RecordClass
        self.fields = frozenset(visit.RecordClass.fields.names) | {"datetime_begin", "datetime_end"}
        # Strings the registry stores as VARCHAR(n) (daf_butler: length <= 32); longer columns are TEXT.
        self.string_limits = {spec.name: int(spec.length or 0) for spec in visit.metadata if spec.isStringType()}
        self.integer_fields = tuple(dict.fromkeys(
            spec.name for spec in [*visit.RecordClass.fields.standard, *visit.metadata]
            if spec.getPythonType() is int))

    def record(self, raw: RawFile) -> DimensionRecord:
        """The visit record as obs_pfs computes it, with only the columns this repository has.

        Nothing is cut: a string longer than its VARCHAR column is a reason, not a shorter value
        (PostgreSQL would refuse it, and SQLite would keep a value PostgreSQL cannot).

        Raises:
            BadHeaderError: the record cannot be computed, or a value does not fit its column.
        """
        computed = raw.visit_values if raw.visit_values is not None else visit_values(raw)  # by the examiner
        values = {k: v for k, v in computed.items() if k in self.fields}
        nsec = computed.get(TIMESPAN_NSEC)
        if nsec is not None:  # worked out by the examiner: the Timespan without astropy's arithmetic here
            values["timespan"] = Timespan.model_validate(nsec)
            del values["datetime_begin"], values["datetime_end"]
        for name, limit in self.string_limits.items():
            value = values.get(name)
            if isinstance(value, str) and len(value) > limit:
                raise BadHeaderError(
                    f"{raw.path.name}: its {name} {value!r} has {len(value)} characters; the visit column "
                    f"{name} holds at most {limit} (nothing is cut: fix the header card it comes from)"
                )
        for name in self.integer_fields:
            value = values.get(name)
            if isinstance(value, int) and not -(2**63) <= value < 2**63:
                raise BadHeaderError(  # {value} in full: a card holds at most 70 digits, and :g overflows
                    f"{raw.path.name}: its {name} {value} does not fit the visit column {name} (a 64-bit "
                    "integer); expected a value of that size in the header card it comes from"
                )
        try:
            return self.record_class(**values)
        except Exception as exc:  # daf_butler refuses a value (e.g. a time span it cannot hold)
            raise BadHeaderError(
                f"{raw.path.name}: the visit record is refused by the butler ({type(exc).__name__}: "
                f"{first_line(exc)}); expected header values a visit record can hold"
            ) from None

    @staticmethod
    def differences(raw: RawFile, state: VisitState) -> str | None:
        """A warning when a value obs_pfs never compares differs from the visit's record (None if none).

        obs_pfs takes the visit's values from its first file and never looks at the others: the
        spectrograph modules read W_ENFCAZ back with noise, so their dithers can fall on either side
        of a quantisation step.  A NULL in the record (a CCD raw has no IRP ratio; some official
        ingests left exposure_time NULL) is not compared, nor the exposure time of a CCD frame with a
        NIR ramp's (or one whose defining camera is not known).
        """
        differences = []
        for name, value in compared_values(raw).items():
            if name == "exposure_time" and raw.kind is not state.source_kind:
                continue  # a NIR ramp's EXPTIME (reads x frame time) is not the CCD shutter's
            recorded = getattr(state.record, name, None)
            if value is not None and recorded is not None and value != recorded:
                differences.append(f"{name} {value} but the visit has {recorded}")
        if not differences:
            return None
        return (f"{raw.path.name}: {'; '.join(differences)} (from {state.source}); ingested with the visit's "
                "values, as obs_pfs does")
