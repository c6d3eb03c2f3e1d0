"""The trainer on the real embedded SmolLM2 (a few steps): frozen weights, PEFT loads the adapter with the
trainer's logits, and evaluate() scores zero-shot / instruction / soft prompt on the same examples."""

import copy
import json
import warnings

import pytest

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.integration


def test_train_smollm2_few_steps_peft_roundtrip(smollm2_frozen, tmp_path):
    from peft import PeftModel

    from analyzer.tasks import get_task
    from analyzer.training import TrainConfig, evaluate, train
    from analyzer.training.scoring import PromptedClassifier

    model, tok = smollm2_frozen
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = tmp_path / "sent"
    res = train(TrainConfig(model="smollm2-135m", task="sentiment", out=str(out), num_virtual_tokens=8, steps=3,
                            batch_size=4, lr=0.03, eval_every=0, eval_examples=16, snapshot_every=1),
                model=model, tokenizer=tok)
    assert res.steps == 3 and res.eval_accuracy is not None
    assert all(not p.requires_grad for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == "smollm2-135m" and cfg["token_dim"] == 576
    from analyzer import load_prompt

    assert cfg["prompt_tuning_init"] == "SAMPLE_VOCAB" and load_prompt(out).init == "LABELS"
    assert load_prompt(out).init_token_ids[:2] == (2731, 3524)

    task = get_task("sentiment")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model = PeftModel.from_pretrained(copy.deepcopy(model), str(out)).eval()
    prompt = peft_model.get_prompt_embedding_to_save("default")
    ours = PromptedClassifier(model, task.label_token_ids(tok), prompt)
    x = torch.tensor([tok.encode(task.format(task.test[0].text))])
    with torch.no_grad():
        full = peft_model(input_ids=x).logits[0, -1]
        mine = ours(x, torch.tensor([x.shape[1]]))[0]
    torch.testing.assert_close(mine, full[[2731, 3524]], rtol=1e-4, atol=1e-4)

    kinds = {}
    for name, prompt_arg in (("none", None), ("text", task.instruction), ("soft", prompt)):
        r = evaluate(model, tok, task, prompt_arg, split="test", limit=16)
        kinds[name] = r
        assert r.n == 16 and 0 <= r.accuracy <= 1
    assert kinds["none"].targets.tolist() == kinds["soft"].targets.tolist()
