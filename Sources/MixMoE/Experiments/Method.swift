import Foundation

/// The training methods compared in the paper (Table II) and its ablations.
public enum Method: String, Codable, Sendable, CaseIterable {
    case base  // no training
    case mixMoE = "mix-moe"  // upcycle, stage 1 (LM group, mono), stage 2 (MT group, parallel)
    case sft  // dense, full fine-tuning on parallel
    case ptSft = "pt-sft"  // dense, full fine-tuning on mono, then parallel
    case lora  // LoRA r=8 on all linear, parallel
    case llamaPro = "llama-pro"  // block expansion, new blocks on mono then parallel
    case moe  // one group, one stage on mono + parallel
    case moePtSft = "moe-pt-sft"  // one group, mono then parallel, all experts both stages
    case moePt = "moe-pt"  // one group, mono only (Table III)
    case moeSft = "moe-sft"  // one group, parallel only (Table III)
    case denseFFN = "dense-ffn"  // control: dense model, only the FFNs of the would-be MoE layers, parallel
    case moeLPR = "moe-lpr"  // MoE-LPR (Zhou et al. 2024): copied experts, expert 0 frozen, top-2; LPR router stage
    case llamaMoEv2 = "llama-moe-v2"  // LLaMA-MoE v2 (Qu et al. 2024): attention and MLP experts in every layer, top-2, all trained
}
