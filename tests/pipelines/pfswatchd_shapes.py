"""PipelineTasks with the connection shapes of drp_stella's pipelines, for tests/butler/test_pipetask.py.

Not the PFS pipeline's tasks (they need the LSST C++ stack): two small tasks of the test's own whose
connections have the shapes of the pipeline's.  Sources: obs_pfs fe944332 ``isrTask.py:766`` (ISR reads
``raw``, storage class PfsRaw, per instrument, visit, arm, spectrograph); drp_stella 3a705d9d
``reduceExposure.py`` (quantum instrument, visit, arm, spectrograph; ``pfsConfig`` a prerequisite per
instrument, visit; outputs such as ``pfsArm`` per visit and camera) and ``pipelines/fitDetectorMap.py:146``,
``pipelines/fiberProfiles.py:207`` (calibration products such as ``detectorMap_candidate`` and
``fiberProfiles`` per instrument, arm, spectrograph, no visit).  Imported by ``pipetask`` only (the test
puts this folder on its PYTHONPATH).
"""

import lsst.pipe.base as pipeBase
import lsst.pipe.base.connectionTypes as cT

CAMERA_VISIT = ("instrument", "visit", "arm", "spectrograph")
CAMERA = ("instrument", "arm", "spectrograph")


class PerVisitConnections(pipeBase.PipelineTaskConnections, dimensions=CAMERA_VISIT):
    raw = cT.Input(name="raw", storageClass="PfsRaw", dimensions=CAMERA_VISIT, doc="one camera's raw frame")
    pfsConfig = cT.PrerequisiteInput(name="pfsConfig", storageClass="PfsConfig", dimensions=("instrument", "visit"),
                                     doc="the visit's fibre configuration")
    summary = cT.Output(name="rawSummary", storageClass="StructuredDataDict", dimensions=CAMERA_VISIT,
                        doc="one product per visit and camera")


class PerVisitConfig(pipeBase.PipelineTaskConfig, pipelineConnections=PerVisitConnections):
    pass


class PerVisitTask(pipeBase.PipelineTask):
    """What a per-exposure task reads: the raw's pixels and visit information, the visit's pfsConfig."""

    ConfigClass = PerVisitConfig
    _DefaultName = "perVisit"

    def run(self, raw, pfsConfig):
        image = raw.getImage().array
        return pipeBase.Struct(summary={
            "visit": int(raw.visitInfo.getId()), "pfsDesignId": int(pfsConfig.pfsDesignId),
            "shape": list(image.shape), "mean": float(image.mean()),
        })


class PerCameraConnections(pipeBase.PipelineTaskConnections, dimensions=CAMERA):
    summaries = cT.Input(name="rawSummary", storageClass="StructuredDataDict", dimensions=CAMERA_VISIT,
                         multiple=True, doc="every visit of this camera")
    combined = cT.Output(name="cameraSummary", storageClass="StructuredDataDict", dimensions=CAMERA,
                         doc="one product per camera, no visit: the shape of a calibration product")


class PerCameraConfig(pipeBase.PipelineTaskConfig, pipelineConnections=PerCameraConnections):
    pass


class PerCameraTask(pipeBase.PipelineTask):
    ConfigClass = PerCameraConfig
    _DefaultName = "perCamera"

    def run(self, summaries):
        return pipeBase.Struct(combined={"visits": sorted(s["visit"] for s in summaries), "count": len(summaries)})
