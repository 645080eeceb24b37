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


@pytest.mark.parametrize("say, line", [
    ("tokenzie 'hello' with gpt2", "/tokenize gpt2 hello"),  # two letters swapped
    ("plot the atention of smollm2 for 'hi there'", "/attention smollm2-135m hi there"),  # a letter missing
    ("break unhappiness into tokens with o200k", "/tokenize o200k_base unhappiness"),  # "into" is the phrase's
    ("train a bpe tokenizer on my file notes.txt", "/bpe --file notes.txt train"),  # a file name fills --file
    ("learn 10 bpe merges from 'low lower newest widest'", "/bpe --merges 10 train low lower newest widest"),
    ("turn 40 1842 into text using cl100k", "/decode cl100k_base 40 1842"),  # the ids before the phrase
    ("compare all tokenizers on 'Tokenization is fun'", "/compare Tokenization is fun"),  # /tokenizers takes no text
    ("write a story about a dragon with smollm2", "/generate smollm2-135m a story about a dragon"),  # weak + a name
    ("which tokenizers are available?", "/tokenizers"),  # what/which opens the tool's phrase
    ("what modules does smollm2 have?", "/inspect smollm2-135m"),
])
def test_the_general_grammar(read, say, line):
    assert read(say) == intents.Run(line)


@pytest.mark.parametrize("text", [
    "write me a poem about the sea",  # a weak verb alone asks the tutor, not a tool
    "what is the embedding matrix?",  # a tool's topic, asked about
    "which tokenizer does gemma use?",  # "tokenizer" is no typo of "tokenize"
])
def test_no_request(read, text):
    assert read(text) is None


def test_a_missing_choice_is_asked_never_taken_from_the_text(read):
    asked = read("bpe on 'low lower lowest'")
    assert isinstance(asked, intents.Ask) and asked.question == "Which action?"
    assert asked.buttons[0].startswith("/bpe train")


def test_typos_are_forgiven_only_one_edit_away():
    def close(typed, declared):  # both as phrases are compared: by their stems
        return intents.close(intents.canon(typed), intents.canon(declared))
    assert close("tokenzie", "tokenize") and close("mnay", "many") and close("genrate", "generate")
    assert not close("model", "modules") and not close("tokenizer", "tokenize") and not close("players", "layer")


def test_a_plugin_declares_alternatives_and_weak_verbs_at_register(tutor):
    from tutor.tools import Text, Tool

    def shout(ctx, text: Text = "") -> None:
        """Say TEXT in capitals."""
    tool = Tool.from_function(shout, phrases=["shout|yell|holler", "~say"])
    names = intents.Names.build(tutor.registry, tutor.available_models())
    tools = {"shout": tool}
    assert intents.interpret("yell 'hello there'", tools, names) == intents.Run("/shout hello there")
    assert intents.interpret("say hello", tools, names) is None  # weak: nothing else points at the tool
