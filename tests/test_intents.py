"""The request grammar (tutor/intents.py) on its own: each rule, on the real registry's tools and names."""

import pytest

from tutor import intents


@pytest.fixture
def read(tutor):
    names = intents.Names.build(tutor.registry, tutor.available_models())
    return lambda text: intents.interpret(text, tutor.registry.tools, names)


@pytest.mark.parametrize("say, line", [
    ("break 'tokenization' into tokens with gpt2", "/tokenize gpt2 tokenization"),  # everyday synonym
    ("find tokens similar to ' dog' in smollm2", '/embed smollm2-135m " dog"'),  # phrase words in any order
    ("turn the ids 464 3797 back into text with gpt2", "/decode gpt2 464 3797"),  # numbers between them
    ("make a log-mel spectrogram with 128 mel bands", "/spectrogram --mels 128"),  # a unit by its stem
    ("show attention for layer two of smollm2 on 'hi there'", "/attention --layer 2 smollm2-135m hi there"),
    ("fine-tune smollm2 with learning rate 1e-4", "/finetune --lr 1e-4 smollm2-135m"),  # the help names lr
    ("show the patches of a 224 image with patch size 32", "/patches --patch 32"),  # the longer mention wins
    ("fine-tune smollm2 on the python docs corpus", "/finetune --corpus python-docs smollm2-135m"),
    ("train bpe on the cat sat on the mat with 20 merges", "/bpe --merges 20 train the cat sat on the mat"),
    ("count tokens of 'hello' with openai-community/gpt2", "/count gpt2 hello"),  # a hub id's tokenizer
    ("inspect the architecture of gpt2-arch", "/inspect gpt2-arch"),  # "the" is no text
])
def test_a_request_runs_its_command(read, say, line):
    assert read(say) == intents.Run(line)


@pytest.mark.parametrize("question", [
    "print(model) shows c_proj before act, which one runs first?",  # a question never matches loosely
    "how many tokens is a whole instruction?",  # a kind of thing, not a text
    "how many tokens does o200k have?",  # the lessons' fact, no text to count
    "in what order do the modules run?",
])
def test_a_question_stays_a_question(read, question):
    assert read(question) is None


def test_a_name_asked_about_is_never_the_text(read):
    asked = read("inspect bert")
    assert isinstance(asked, intents.Ask) and asked.buttons == ("/inspect bert-base-uncased", "/inspect minilm-l6")
