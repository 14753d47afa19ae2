@_exported import MoECkptFormats
@_exported import MoECkptModels
@_exported import MoECkptTensors
