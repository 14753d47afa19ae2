@_exported import MoECkptArchitectures
@_exported import MoECkptFormats
@_exported import MoECkptForward
@_exported import MoECkptKernels
@_exported import MoECkptModels
@_exported import MoECkptTensors
