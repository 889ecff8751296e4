"""transformers configuration of the models mixmoe writes whose architecture transformers lacks.

Remote code: mixmoe copies this file and modeling_mixmoe.py into every such model directory and
points `auto_map` in config.json at them, so

    AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)

builds exactly mixmoe's model. The dense part is transformers' own Llama or Qwen2; what differs is
carried in the extra blocks of config.json, which these classes keep verbatim:

- ``mix_moe``: Mix-MoE layers (LM and MT expert groups, routers over [h ; T h]) and the MoE
  baselines built from the same layer (generic MoE, MoE PT+SFT, MoE-LPR);
- ``lora``: LoRA adapters on the listed linear modules of every layer (r, alpha, targets);
- ``llama_pro_expanded_layers``: the blocks LLaMA-Pro inserted (plain blocks; recorded only);
- ``attn_moe``: LLaMA-MoE v2's attention experts.

`model_type` is ``mixmoe_llama`` or ``mixmoe_qwen2`` so that loading such a directory without the
remote code fails in transformers instead of building a plain Llama with random FFNs.
"""
from transformers import LlamaConfig, Qwen2Config

_EXTRA = ("mix_moe", "lora", "llama_pro_expanded_layers", "attn_moe")


def _keep_extra(config, kwargs):
    """Keeps mixmoe's blocks of config.json verbatim beside the base family's fields; router logits
    are returned on request, as in Mixtral / Qwen2-MoE."""
    config.output_router_logits = kwargs.pop("output_router_logits", False)
    for key in _EXTRA:
        setattr(config, key, kwargs.pop(key, None))
    return kwargs


class MixMoELlamaConfig(LlamaConfig):
    model_type = "mixmoe_llama"

    def __init__(self, **kwargs):
        super().__init__(**_keep_extra(self, kwargs))


class MixMoEQwen2Config(Qwen2Config):
    model_type = "mixmoe_qwen2"

    def __init__(self, **kwargs):
        super().__init__(**_keep_extra(self, kwargs))
