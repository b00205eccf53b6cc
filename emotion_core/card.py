"""The model card: a `huggingface_hub.ModelCard` whose model-index lets the Hub show the metrics."""

import re
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .data import DataReport
from .model_folder import CONFUSION, RELIABILITY, RUN_CONFIG

TEMPLATE = """---
{{ card_data }}
---

# {{ model_name }}

Reads the emotion in a piece of English text: one of {{ labels | join(", ") }}{% if "neutral" in labels %}
(neutral: no clear emotion){% endif %}.
Fine-tuned from [{{ base_model }}](https://huggingface.co/{{ base_model }}) on `{{ dataset }}`
with the emotion toolkit's `train.py` (command below).

## Results

| split | texts | accuracy | macro-F1 | weighted-F1 |
| --- | ---: | ---: | ---: | ---: |
{% for split, m in splits.items() -%}
| {{ split }} | {{ m.n }} | {{ "%.4f" | format(m.accuracy) }} | {{ "%.4f" | format(m.macro_f1) }} | {{ "%.4f" | format(m.weighted_f1) }} |
{% endfor %}
{% if "folded" in splits -%}
`folded`: validation rows whose fine label the training grouping folds into one of the labels (mild
emotion: annoyance as anger, admiration as joy, ...), measured apart from validation.

{% endif -%}
{% if sources | length > 1 -%}
Each source on its own:

| source | split | texts | accuracy | macro-F1 |
| --- | --- | ---: | ---: | ---: |
{% for source, by_split in sources.items() -%}
{% for split, m in by_split.items() -%}
| {{ source }} | {{ split }} | {{ m.n }} | {{ "%.4f" | format(m.accuracy) }} | {{ "%.4f" | format(m.macro_f1) }} |
{% endfor -%}
{% endfor %}
{% endif -%}
Per class on the {{ report_split }} split:

| label | precision | recall | F1 | support | answered |
| --- | ---: | ---: | ---: | ---: | ---: |
{% for name, c in per_class.items() -%}
| {{ name }} | {{ "%.3f" | format(c.precision) }} | {{ "%.3f" | format(c.recall) }} | {{ "%.3f" | format(c.f1) }} | {{ c.support }} | {% if c.answered is defined %}{{ "%.1f" | format(100 * c.answered) }}%{% endif %} |
{% endfor %}
"answered": the share of the split's texts given that label.

![Confusion matrix on the {{ report_split }} split]({{ files.confusion }})
{% if calibration %}
## Calibration

Probabilities are temperature-scaled: logits divided by T = {{ "%.3f" | format(calibration.temperature) }}{% for name, t in (calibration.label_temperatures or {}).items() %}{{ "; " if not loop.first }}
({{ "%.3f" | format(t) }} for the texts answered {{ name }}){% endfor %}, fitted on the validation split (minimum negative
log-likelihood). Labels do not change; probabilities become
honest about how often they are right. Expected calibration error (15 bins) and NLL:

| split | ECE before | ECE after | NLL before | NLL after |
| --- | ---: | ---: | ---: | ---: |
{% for split, m in calibration.items() if split in ("validation", "test") -%}
| {{ split }} | {{ "%.2f" | format(100 * m.ece_before) }}% | {{ "%.2f" | format(100 * m.ece_after) }}% | {{ "%.4f" | format(m.nll_before) }} | {{ "%.4f" | format(m.nll_after) }} |
{% endfor %}
![Reliability diagram]({{ files.reliability }})
{% endif %}
{% if behaviour -%}
## Behaviour

Hand-written cases, each naming the answers it accepts, grouped by capability (`{{ behaviour.cases }}`
in the toolkit; CheckList-style: Ribeiro et al., ACL 2020). None was used to train this model or to
choose its settings. Invariance: every case of a group (the same text with other names, places or
pronouns) must get one label.

| capability | cases | passed |{% if behaviour.before %} the model before |{% endif %}
| --- | ---: | ---: |{% if behaviour.before %} ---: |{% endif %}
{% for capability, (done, total) in behaviour.rates.items() -%}
| {{ capability | replace("_", " ") }} | {{ total }} | {{ "%.0f" | format(100 * done / total) }}% |{% if behaviour.before %} {% if capability in behaviour.before %}{{ "%.0f" | format(100 * behaviour.before[capability][0] / behaviour.before[capability][1]) }}%{% endif %} |{% endif %}
{% endfor %}
{% if behaviour.misses -%}
What it still gets wrong, for example:

| capability | text | accepted | answered |
| --- | --- | --- | --- |
{% for miss in behaviour.misses -%}
| {{ miss.capability | replace("_", " ") }} | {{ miss.text | replace("|", "\\\\|") }} | {{ "one answer for the text with other names" if miss.expect == "same" else miss.expect | replace("|", " or ") }} | {{ miss.said or "not read (not English)" }} |
{% endfor %}
{% endif -%}
{% endif %}
## Use

```python
from emotion_core import Classifier

classifier = Classifier.from_pretrained("path/or/hub-id")
classifier.predict("i feel like a new person today")  # every label's probability, highest first
```

or, with transformers alone: `pipeline("text-classification", model="path/or/hub-id", top_k=None)`.

The model reads English. Through `Classifier` (and the toolkit's apps and `score`), a text that is
clearly in another language gets no emotion, with its language and a message saying so
(`any_language=True` reads it all the same); the pipeline alone answers any text, and a model
fine-tuned on English answers other languages with a confident, meaningless "neutral" or emotion.

## Training

```
{{ command }}
```

{% for key, value in settings.items() -%}
- `{{ key }}`: {{ value }}
{% endfor %}
{% if soup -%}
{% set joined_if = soup.joined_if | default("the mean over sources of validation macro-F1 did not fall") -%}
{% if soup.kept | length > 1 -%}
This model is a greedy model soup: the mean of the weights of {{ soup.kept | length }} runs that started from the same
weights ({{ soup.kept | join(", ") }}; the settings above are those of the first). Each run joined only if
{{ joined_if }}; every step is in `{{ files.run_config }}`.
{% else -%}
This folder was cooked as a greedy model soup, but no other run joined {{ soup.kept[0] }} (a run joins only if
{{ joined_if }}): it is that run, evaluated again. Every step is in `{{ files.run_config }}`.
{% endif -%}
{% endif -%}
{% if prior_shift -%}
Then {{ prior_shift.label }}'s prior was shifted: {{ "%+.2f" | format(prior_shift.offset) }} added to its logit (in the
classification head's bias), chosen on validation by the requirements of `{{ prior_shift.rule }}`
(`python -m emotion_core shift`; every offset tried is in `{{ files.run_config }}`).
{% endif -%}
Training took {{ "%.0f" | format(train_runtime_s) }} s. Text normalisation (applied again at inference):
{{ normalize | join(", ") or "none" }}.
{% if data_lines %}
Rows used, and rows dropped with the reason:

{% for line in data_lines -%}
- {{ line }}
{% endfor -%}
{% endif %}

## Data and licence

{{ dataset_note }}
"""

SOURCE_NOTES = {
    "emotion": "The emotion data set (CARER: Saravia et al., EMNLP 2018) is for educational and research use "
               "only; cite the CARER paper when you use this model's results.",
    "goemotions": "GoEmotions (Demszky et al., ACL 2020; Reddit comments, names masked as [NAME]) is under "
                  "Apache-2.0; cite the GoEmotions paper.",
    "tweeteval": "TweetEval's emotion task (Barbieri et al., Findings of EMNLP 2020), from SemEval-2018 Task 1 "
                 "(Mohammad et al.), is for research use; cite both papers.",
}


def dataset_note(run_config: dict) -> str:
    """Licence notes for the known sources, else a pointer to the data's own licence."""
    names = " ".join([run_config["dataset"], *(s["name"] for s in run_config.get("sources", []))]).lower()
    words = set(re.findall(r"[a-z]+", names))
    notes = [note for key, note in SOURCE_NOTES.items() if key in words]
    return "\n\n".join(notes) or "See the training data's own licence."


# The Hub's ids of the known sources, with the configuration that matches the local copy: each figure links there.
HUB_DATASETS = {"emotion": ("dair-ai/emotion", "Emotion", "split"),
                "goemotions": ("google-research-datasets/go_emotions", "GoEmotions", "simplified"),
                "tweeteval": ("cardiffnlp/tweet_eval", "TweetEval", "emotion")}


def eval_results(metrics: dict, dataset: str, label_maps: dict[str, str | None] | None = None) -> list[EvalResult]:
    """One result per data set and split, each under its Hub id where the source is a known one (else the data's
    own name), with the standard metric types: accuracy, and f1 with its averaging (macro). A known source's name
    says which rows were scored, and how its labels were mapped (`label_maps`, by source), since those figures are
    not the data set's own task (GoEmotions' 28 labels)."""
    known = {name: by_split for name, by_split in metrics.get("sources", {}).items() if name in HUB_DATASETS}
    if known:
        maps = label_maps or {}
        figures = [(hub_id, f"{title} ({m['n']:,} rows" + (f", labels mapped by {maps[name]})" if maps.get(name) else ")"),
                    config, split, m)
                   for name, by_split in known.items() for hub_id, title, config in [HUB_DATASETS[name]]
                   for split, m in by_split.items()]
    else:
        figures = [(dataset, dataset, None, split, metrics[split]) for split in ("validation", "test") if split in metrics]
    return [EvalResult(task_type="text-classification", task_name="Text Classification", dataset_type=hub_id,
                       dataset_name=name, dataset_config=config, dataset_split=split, metric_type=metric,
                       metric_name=label, metric_value=round(m[key], 4), metric_config=averaging)
            for hub_id, name, config, split, m in figures if split != "folded"
            for key, metric, label, averaging in (("accuracy", "accuracy", "Accuracy", None),
                                                  ("macro_f1", "f1", "Macro F1", "macro"))]


def build_model_card(metrics: dict, run_config: dict, model_name: str) -> ModelCard:
    """Fill the card from `metrics.json` and `run_config.json` so the three never disagree."""
    splits = {name: metrics[name] for name in ("validation", "test", "folded") if name in metrics}
    report_split = "test" if "test" in splits else "validation"
    report = splits[report_split]
    dataset = run_config["dataset"]
    results = eval_results(metrics, dataset, {s["name"]: s.get("label_map") for s in run_config.get("sources", [])})
    hub_ids = sorted({r.dataset_type for r in results if "/" in r.dataset_type and not Path(r.dataset_type).exists()})
    card_data = ModelCardData(
        model_name=model_name, base_model=run_config["base_model"], language="en", license="apache-2.0",
        library_name="transformers", pipeline_tag="text-classification", tags=["emotion", "text-classification"],
        datasets=hub_ids or None, metrics=["accuracy", "f1"], eval_results=results,
    )
    return ModelCard.from_template(
        card_data, template_str=TEMPLATE, model_name=model_name, labels=report["labels"],
        base_model=run_config["base_model"], dataset=dataset, splits=splits, report_split=report_split,
        per_class=report["per_class"], settings=run_config["training"],
        train_runtime_s=metrics.get("train_runtime_s", 0.0), command=run_config.get("command") or "python train.py ...",
        dataset_note=dataset_note(run_config), sources=metrics.get("sources", {}),
        normalize=run_config.get("normalize", []), soup=run_config.get("soup"), prior_shift=run_config.get("prior_shift"),
        calibration=metrics.get("calibration"), behaviour=metrics.get("behaviour"), data_lines=DataReport(metrics.get("data", {})).lines(),
        files={"confusion": CONFUSION, "reliability": RELIABILITY, "run_config": RUN_CONFIG},
    )
