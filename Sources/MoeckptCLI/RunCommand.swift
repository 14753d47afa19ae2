import ArgumentParser
import MoECkpt

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a model's forward pass on the inputs of a file (safetensors, HDF5 or .moeckpt) and write its outputs.",
        discussion: """
            Inputs: input_ids (I64 [batch, tokens]) for causal LMs, inputs (float) for layer and block modules. \
            Outputs, as F32: logits, hidden_states.N and router_logits.N (causal LMs); outputs, aux_loss and \
            router_logits (modules that produce them).

            Examples:
              moeckpt run model-dir --input inputs.safetensors --output outputs.safetensors
              moeckpt run model.safetensors --config config.json --input inputs.safetensors --output out.safetensors
            """)

    @Argument(help: "The model: a safetensors, HDF5 or .moeckpt file, an index.json, or a directory holding one.", completion: .file())
    var model: String

    @Option(help: "The file holding the inputs (safetensors, HDF5 or .moeckpt).", completion: .file())
    var input: String

    @Option(help: "Where to write the outputs (a safetensors file, F32).", completion: .file(extensions: ["safetensors"]))
    var output: String

    @Flag(help: "Also compute the load-balancing loss (aux_loss) and router z-loss (router_z_loss).")
    var auxLosses = false

    @OptionGroup var threads: ThreadOptions
    @OptionGroup var arithmetic: ArithmeticOption
    @OptionGroup var description: ConfigOption

    func run() throws {
        keepActivationBuffersWarm()
        let loaded = try description.loader.load(model)
        let outputs = try ModelRunner(loaded).run(
            inputsFrom: try ModelDirectory.open(input),
            options: RunOptions(threads: threads.threads, auxLosses: auxLosses, arithmetic: arithmetic.arithmetic))
        try ModelRunner.write(outputs, to: output, metadata: ["producer": "moeckpt run", "model": model])
        print("wrote \(output): \(outputs.keys.map(\.description).sorted(by: naturalOrder).joined(separator: ", "))")
    }
}
