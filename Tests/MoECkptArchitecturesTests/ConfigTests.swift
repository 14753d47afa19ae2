import Foundation
import MoECkptTestSupport
import Testing

@testable import MoECkptArchitectures
@testable import MoECkptFormats
@testable import MoECkptModels

/// Config files as they exist in the wild.
struct ConfigTests {
    static func object(_ text: String) throws -> JSONObject {
        guard case .object(let object) = try JSONParser.parse(text) else { throw ModelConfigError.notJSON("") }
        return object
    }

    static func read(_ text: String) throws -> any Architecture {
        try ArchitectureRegistry.standard.read(configJSON: object(text))
    }

    /// Mixtral-8x7B-v0.1's config.json (transformers 4.36): rope_theta at the top, no head_dim.
    static let transformers4 = """
        {"architectures": ["MixtralForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
         "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
         "max_position_embeddings": 32768, "model_type": "mixtral", "num_attention_heads": 32,
         "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8,
         "output_router_logits": false, "rms_norm_eps": 1e-05, "rope_theta": 1000000.0, "router_aux_loss_coef": 0.02,
         "sliding_window": null, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
         "transformers_version": "4.36.0.dev0", "use_cache": true, "vocab_size": 32000}
        """

    @Test func readsTransformers4Config() throws {
        guard let c = try Self.read(Self.transformers4) as? MixtralConfig else { Issue.record("not mixtral"); return }
        #expect(c.hiddenSize == 4096 && c.headDim == 128 && c.numKVHeads == 8 && c.numExperts == 8 && c.expertsPerToken == 2)
        #expect(c.ropeTheta == 1e6 && c.rmsNormEps == 1e-5 && c.slidingWindow == nil && !c.tieWordEmbeddings)
        #expect(c.inconsistencies.isEmpty)
    }

    @Test func readsTransformers5ConfigWithRopeParameters() throws {
        let text = try String(contentsOfFile: Fixtures.path("safetensors/tiny-mixtral/config.json"), encoding: .utf8)
        guard let c = try Self.read(text) as? MixtralConfig else { Issue.record("not mixtral"); return }
        #expect(c.ropeTheta == 1e6 && c.headDim == 4 && c.numKVHeads == 2 && c.vocabSize == 64)
    }

    @Test func explicitHeadDimMissingKVHeadsSlidingWindowAndTiedEmbeddings() throws {
        let text = """
            {"model_type": "mixtral", "hidden_size": 16, "num_attention_heads": 4, "head_dim": 8, "vocab_size": 48,
             "intermediate_size": 32, "num_hidden_layers": 2, "num_local_experts": 3, "num_experts_per_tok": 2,
             "sliding_window": 4, "tie_word_embeddings": true, "rope_parameters": {"rope_theta": 10000.0},
             "some_future_field": {"nested": [1, 2]}}
            """
        guard let c = try Self.read(text) as? MixtralConfig else { Issue.record("not mixtral"); return }
        #expect(c.headDim == 8 && c.numKVHeads == 4 && c.slidingWindow == 4 && c.tieWordEmbeddings && c.ropeTheta == 10000)
        let architecture = c
        #expect(!architecture.canonicalTensors.contains { $0.name == "lm_head" })
        #expect(architecture.canonicalTensors.first { $0.name == "layers.0.attn.q" }?.shape == [32, 16])
    }

    @Test func reportsEveryMissingFieldAtOnce() throws {
        let text = #"{"model_type": "mixtral", "hidden_size": 16, "num_attention_heads": "four"}"#
        #expect(
            throws: ModelConfigError.problems([
                "num_attention_heads must be a non-negative integer", "vocab_size is missing", "intermediate_size is missing",
                "num_hidden_layers is missing", "num_local_experts is missing", "num_experts_per_tok is missing",
            ])
        ) {
            try Self.read(text)
        }
    }

    @Test func reportsInconsistentConfigs() throws {
        let text = """
            {"model_type": "mixtral", "hidden_size": 16, "num_attention_heads": 6, "num_key_value_heads": 4,
             "vocab_size": 8, "intermediate_size": 8, "num_hidden_layers": 1, "num_local_experts": 2, "num_experts_per_tok": 3}
            """
        let architecture = try Self.read(text)
        #expect(
            architecture.inconsistencies == [
                "experts per token (3) exceed the experts (2)",
                "attention heads (6) are not divisible by key/value heads (4)",
            ])
    }

    @Test func readsMistralParams() throws {
        let text = """
            {"dim": 4096, "n_layers": 32, "head_dim": 128, "hidden_dim": 14336, "n_heads": 32, "n_kv_heads": 8,
             "norm_eps": 1e-05, "vocab_size": 32000, "moe": {"num_experts_per_tok": 2, "num_experts": 8}, "rope_theta": 1e6}
            """
        let c = try MixtralConfig(mistralParams: Self.object(text))
        #expect(
            c.hiddenSize == 4096 && c.intermediateSize == 14336 && c.numExperts == 8 && c.expertsPerToken == 2
                && c.numKVHeads == 8 && c.headDim == 128 && c.ropeTheta == 1e6)
        // And back: params.json as written reads to the same config.
        #expect(try MixtralConfig(mistralParams: c.mistralParams) == c)
        guard case .text(let written)? = c.description(.mistralParams) else { Issue.record("no params.json"); return }
        #expect(try MixtralConfig(mistralParams: Self.object(written)) == c)
    }

    @Test func huggingFaceAndGGUFDescriptionsRoundTrip() throws {
        guard let c = try Self.read(Self.transformers4) as? MixtralConfig else { Issue.record("not mixtral"); return }
        #expect(try Self.read(c.configJSONText).isSame(as: c))
        #expect(try MixtralConfig(ggufMetadata: c.ggufMetadata) == c)
    }

    @Test(arguments: [
        (#"{"model_type": "mixture_of_experts", "d_model": 16, "d_ff": 32, "num_experts": 4, "k": 2}"#, 6),
        (#"{"model_type": "switch_transformer", "d_model": 16, "num_experts": 4, "capacity_factor": 1.0}"#, 6),
        (#"{"model_type": "mixtral_block", "d_model": 16, "n_heads": 4, "num_experts": 4, "k": 2}"#, 14),
        (#"{"model_type": "basic_moe", "feature_in": 16, "feature_out": 8, "num_experts": 4}"#, 4),
        (#"{"model_type": "sparse_moe", "hidden_dim": 16, "expert_number": 4, "top_k": 2, "shared_experts_number": 2}"#, 6),
    ])
    func readsSeedModuleConfigs(text: String, tensorCount: Int) throws {
        let architecture = try Self.read(text)
        #expect(architecture.canonicalTensors.count == tensorCount)
        #expect(try Self.read(architecture.configJSONText).isSame(as: architecture))
    }

    @Test func refusesUnknownModelTypes() throws {
        #expect(throws: ModelConfigError.unknownModelType("llama", known: ArchitectureRegistry.standard.modelTypes)) {
            try Self.read(#"{"model_type": "llama"}"#)
        }
    }
}
