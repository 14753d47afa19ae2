import MoECkptTensors

/// The tensor a forward pass reads from an inputs file (`moeckpt run`, `moeckpt verify`).
public enum InputKey: String, Sendable, CaseIterable {
    /// Token ids, I64 or I32 [batch, tokens], of a causal LM.
    case inputIDs = "input_ids"
    /// Float activations of a layer or block module, the last dimension its width.
    case inputs
}

/// An output a forward pass produces, and its key in outputs and expected-outputs files.
public enum OutputKey: Hashable, Sendable, CustomStringConvertible {
    case logits
    case outputs
    case auxLoss
    case routerZLoss
    /// A module's router logits (`router_logits`).
    case routerLogits
    /// One layer's router logits (`router_logits.N`).
    case layerRouterLogits(Int)
    /// transformers' `output_hidden_states`, one entry (`hidden_states.N`).
    case hiddenStates(Int)

    public var description: String {
        switch self {
        case .logits: "logits"
        case .outputs: "outputs"
        case .auxLoss: "aux_loss"
        case .routerZLoss: "router_z_loss"
        case .routerLogits: "router_logits"
        case .layerRouterLogits(let layer): "router_logits.\(layer)"
        case .hiddenStates(let index): "hidden_states.\(index)"
        }
    }

    /// The key a file's tensor name stands for (`hidden_states.3`, `aux_loss`, ...).
    public init?(_ name: String) {
        let plain: [String: OutputKey] = [
            "logits": .logits, "outputs": .outputs, "aux_loss": .auxLoss,
            "router_z_loss": .routerZLoss, "router_logits": .routerLogits,
        ]
        if let key = plain[name] { self = key; return }
        let parts = name.split(separator: ".", maxSplits: 1)
        guard parts.count == 2, let index = Int(parts[1]), index >= 0 else { return nil }
        switch parts[0] {
        case "hidden_states": self = .hiddenStates(index)
        case "router_logits": self = .layerRouterLogits(index)
        default: return nil
        }
    }
}

/// What a forward pass runs on.
public enum ModelInput: Sendable {
    /// [batch][tokens] token ids (every sequence the same length).
    case tokenIDs([[Int]])
    case values(HostTensor)
}

/// A model's forward pass on its weights, built by its architecture.
public protocol ForwardPass: Sendable {
    /// The tensor it reads from an inputs file.
    var input: InputKey { get }

    /// Bytes a run on input of this shape holds at its peak beyond the weights (nil when the
    /// count overflows), checked against the process's memory before anything is allocated.
    func bytesNeeded(input shape: [Int], threads: Int) -> Int?

    /// Every output it produces; with `auxLosses`, also the load-balancing loss and router z-loss
    /// from its router logits (when it has them and no aux_loss of its own).
    func run(_ input: ModelInput, threads: Int, auxLosses: Bool) throws(ForwardError) -> [OutputKey: HostTensor]
}

/// Why a forward pass cannot run.
public enum ForwardError: Error, CustomStringConvertible, Equatable, Sendable {
    case unsupportedWeightDtype(String, DType)
    case badInput(String)
    case unreadable(String)

    public var description: String {
        switch self {
        case .unsupportedWeightDtype(let name, let dtype):
            "weight \(name) is \(dtype.name); the forward pass reads float weights (F64, F32, F16, BF16, F8)"
        case .badInput(let why): why
        case .unreadable(let why): why
        }
    }
}
