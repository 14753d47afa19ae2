import Foundation

/// A conversion to a safetensors directory split into independent jobs, one per output shard, for
/// a batch scheduler (a Slurm job array, a Kubernetes Indexed Job, MPI ranks) instead of one
/// machine: `plan` writes the plan, `runJob` writes one shard, `finish` checks every shard and
/// writes the index, the description and the sidecars. The result is byte for byte what one
/// `Converter.convert` writes (each job re-derives the same tensors from the input's headers and
/// the plan's options, and refuses when they no longer give its shard).
///
/// A job writes its shard atomically, then a record of its size and CRC-32C
/// (`.moeckpt-jobs/<shard>.json` in the output directory); `finish` accepts a shard only with its
/// record, so a killed job leaves nothing it accepts, and any job can be run again.
public enum ConvertJobs {
    public static let recordsDirectory = ".moeckpt-jobs"

    /// What the jobs share: the input, the output directory, the options, and each job's shard.
    public struct Plan: Codable, Sendable, Equatable {
        public var schemaVersion = 1
        public let input: String
        public let output: String
        /// The options of `ConvertOptions` a job needs (dtype and names by their spelling).
        public let dtype: String?
        public let names: String?
        public let maxShardBytes: Int?
        public let checkIntegrity: Bool
        public let jobs: [Job]

        public struct Job: Codable, Sendable, Equatable {
            public let file: String
            public let tensors: [String]
            /// Bytes of tensor data in the shard.
            public let bytes: Int
        }
    }

    /// What a finished job leaves beside its shard.
    struct Record: Codable, Equatable {
        let file: String
        let size: Int
        let crc32c: String
    }

    /// Works out the jobs of converting `inputPath` as `plan` says (a safetensors directory) and
    /// writes them to `planPath`; creates the (empty) output directory the jobs write into.
    public static func plan(
        _ inputPath: String, plan outputPlan: OutputPlan, checkIntegrity: Bool, to planPath: String
    ) throws(FileError) -> Plan {
        guard case .safetensorsDirectory(let maxShardBytes) = outputPlan.container else {
            throw FileError(path: outputPlan.destination, problem: JobError.notADirectoryOutput)
        }
        let (shards, _, _, _) = try derive(inputPath, outputPlan, checkIntegrity: checkIntegrity)
        let jobs = shards.map { shard in
            Plan.Job(file: shard.file, tensors: shard.tensors.map(\.name), bytes: shard.tensors.reduce(0) { $0 + $1.byteCount })
        }
        let plan = Plan(
            input: absolute(inputPath), output: absolute(outputPlan.destination), dtype: outputPlan.dtype?.name,
            names: outputPlan.names?.rawValue, maxShardBytes: maxShardBytes, checkIntegrity: checkIntegrity, jobs: jobs)
        if FileSystem.isDirectory(plan.output) && !FileSystem.contents(ofDirectory: plan.output).isEmpty {
            throw FileError(path: outputPlan.destination, problem: OutputError.directoryNotEmpty)
        }
        do {
            try FileManager.default.createDirectory(atPath: plan.output, withIntermediateDirectories: true)
        } catch { throw FileError(path: outputPlan.destination, problem: JobError.cannotCreate(String(describing: error))) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let text = (try? encoder.encode(plan)).map { [UInt8]($0) } ?? []
        let output = try AtomicOutput(destination: planPath, isDirectory: false)
        try Converter.writeSmallFile(output.temporaryPath, text + [0x0A])
        try output.commit()
        return plan
    }

    /// Runs job `index` of the plan at `planPath`: its shard, written atomically, then its record.
    public static func runJob(_ index: Int, plan planPath: String) throws(FileError) -> Plan.Job {
        let plan = try read(planPath)
        guard plan.jobs.indices.contains(index) else {
            throw FileError(path: planPath, problem: JobError.noSuchJob(index, count: plan.jobs.count))
        }
        let job = plan.jobs[index]
        let (shards, source, _, _) = try derive(plan.input, outputPlan(plan, planPath), checkIntegrity: plan.checkIntegrity)
        guard let shard = shards.first(where: { $0.file == job.file }), shard.tensors.map(\.name) == job.tensors,
            shard.tensors.reduce(0, { $0 + $1.byteCount }) == job.bytes
        else { throw FileError(path: plan.input, problem: JobError.inputChanged(job.file)) }

        let destination = FileSystem.join(plan.output, job.file)
        let output = try AtomicOutput(destination: destination, isDirectory: false)
        // The checksum is taken on the way out: reading the shard back would read it from disk,
        // since written pages leave the page cache as they reach the disk.
        let file = try OutputFile(creating: output.temporaryPath, checksummed: true)
        _ = try SafetensorsWriter.write(shard.tensors, metadata: source.metadata, to: file)
        try file.close()
        let record = Record(file: job.file, size: file.bytesWritten, crc32c: CRC32C.hex(file.crc32c ?? 0))
        try output.commit()
        let records = FileSystem.join(plan.output, recordsDirectory)
        try? FileManager.default.createDirectory(atPath: records, withIntermediateDirectories: true)
        let recordOutput = try AtomicOutput(destination: FileSystem.join(records, job.file + ".json"), isDirectory: false)
        try Converter.writeSmallFile(recordOutput.temporaryPath, [UInt8]((try? JSONEncoder().encode(record)) ?? Data()))
        try recordOutput.commit()
        return job
    }

    /// Checks that every job finished (its record, and a shard of the recorded size), then writes
    /// what goes beside the shards and removes the records.
    public static func finish(plan planPath: String) throws(FileError) -> ConvertResult {
        let plan = try read(planPath)
        let records = FileSystem.join(plan.output, recordsDirectory)
        var missing: [Int] = []
        for (index, job) in plan.jobs.enumerated() {
            let shard = FileSystem.join(plan.output, job.file)
            let recordPath = FileSystem.join(records, job.file + ".json")
            guard let bytes = try? Data(contentsOf: URL(fileURLWithPath: recordPath)),
                let record = try? JSONDecoder().decode(Record.self, from: bytes), record.file == job.file,
                let size = (try? FileManager.default.attributesOfItem(atPath: shard))?[.size] as? Int, size == record.size
            else {
                missing.append(index)
                continue
            }
        }
        guard missing.isEmpty else { throw FileError(path: plan.output, problem: JobError.unfinished(missing)) }
        let (shards, source, input, uncastable) = try derive(plan.input, outputPlan(plan, planPath), checkIntegrity: plan.checkIntegrity)
        guard shards.map(\.file) == plan.jobs.map(\.file) else {
            throw FileError(path: plan.input, problem: JobError.inputChanged(plan.jobs.first?.file ?? ""))
        }
        let dataBytes = plan.jobs.reduce(0) { $0 + $1.bytes }
        try Converter.writeBesideShards(shards, dataBytes: dataBytes, source, input: input) { FileSystem.join(plan.output, $0) }
        try? FileManager.default.removeItem(atPath: records)
        return ConvertResult(
            output: plan.output, files: plan.jobs.map { FileSystem.join(plan.output, $0.file) },
            tensors: plan.jobs.reduce(0) { $0 + $1.tensors.count }, bytes: dataBytes, uncastable: uncastable, leftOut: source.leftOut,
            notes: source.notes)
    }

    /// The job index a batch scheduler gives this process: Slurm's array task id, a Kubernetes
    /// Indexed Job's completion index, or the MPI rank (PMIx, Open MPI).
    public static func jobIndexFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Int? {
        for name in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"] {
            if let value = environment[name], let index = Int(value) { return index }
        }
        return nil
    }

    /// The shards, source and input a conversion with these options gives: the same computation
    /// `Converter.convert` makes, from the input's headers.
    static func derive(
        _ inputPath: String, _ outputPlan: OutputPlan, checkIntegrity: Bool
    ) throws(FileError) -> ([(file: String, tensors: [TensorToWrite])], ConversionSource, Checkpoint, [String]) {
        guard case .safetensorsDirectory(let maxShardBytes) = outputPlan.container else {
            throw FileError(path: outputPlan.destination, problem: JobError.notADirectoryOutput)
        }
        let input = try ModelDirectory.open(inputPath)
        try Converter.refuseOverwritingInput(input, inputPath: inputPath, outputPath: outputPlan.destination)
        try Converter.refuseWritingIntoShards(input, outputPath: outputPlan.destination)
        let source = try Converter.source(input, named: inputPath, plan: outputPlan)
        let (tensors, uncastable) = try Converter.tensorsToWrite(
            input, source, plan: outputPlan, checkIntegrity: checkIntegrity, progress: nil)
        return (Converter.directoryShards(tensors, fileStem: source.fileStem, maxShardBytes: maxShardBytes), source, input, uncastable)
    }

    static func read(_ planPath: String) throws(FileError) -> Plan {
        guard let bytes = try? Data(contentsOf: URL(fileURLWithPath: planPath)) else {
            throw FileError(path: planPath, problem: JobError.unreadablePlan("cannot be read"))
        }
        do {
            let plan = try JSONDecoder().decode(Plan.self, from: bytes)
            guard plan.schemaVersion == 1 else { throw JobError.unreadablePlan("schemaVersion \(plan.schemaVersion) is not 1") }
            return plan
        } catch let error as JobError {
            throw FileError(path: planPath, problem: error)
        } catch {
            throw FileError(path: planPath, problem: JobError.unreadablePlan("is not a moeckpt conversion plan"))
        }
    }

    static func outputPlan(_ plan: Plan, _ planPath: String) throws(FileError) -> OutputPlan {
        let dtype = plan.dtype.flatMap { DType(userSpelling: $0) }
        guard plan.dtype == nil || dtype != nil else {
            throw FileError(path: planPath, problem: JobError.unreadablePlan("has an unknown dtype"))
        }
        let options = ConvertOptions(dtype: dtype, maxShardBytes: plan.maxShardBytes, names: plan.names.map { LayoutKey(rawValue: $0) })
        do { return try OutputPlan(destination: plan.output, options: options) } catch {
            throw FileError(path: planPath, problem: JobError.unreadablePlan(error.description))
        }
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileSystem.join(FileManager.default.currentDirectoryPath, path)
    }
}

/// Why a conversion job cannot run or finish.
public enum JobError: Error, CustomStringConvertible, Equatable, Sendable {
    case notADirectoryOutput
    case noSuchJob(Int, count: Int)
    case inputChanged(String)
    case unfinished([Int])
    case unreadablePlan(String)
    case cannotCreate(String)

    public var description: String {
        switch self {
        case .notADirectoryOutput: "--plan splits a safetensors directory output (OUT a directory) into one job per shard"
        case .noSuchJob(let index, let count): "the plan has jobs 0 to \(count - 1), not \(index)"
        case .inputChanged(let file):
            "the input no longer gives the plan's \(file) (the checkpoint or moeckpt changed since planning): plan again"
        case .unfinished(let jobs) where jobs.count == 1:
            "job \(jobs[0]) has not finished (no shard of the recorded size): run it again"
        case .unfinished(let jobs):
            "jobs \(jobs.map(String.init).joined(separator: ", ")) have not finished (no shard of the recorded size): run them again"
        case .unreadablePlan(let why): "the plan \(why)"
        case .cannotCreate(let why): "cannot create the output directory: \(why)"
        }
    }
}
