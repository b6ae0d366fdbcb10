"""The example Quorum grew from: a tech-news site's poll (see ../shared/seeds in the repo's history).

Used by the playground and the tests; two answers are longer than Discord's 80-character
button label, which is what makes it a good example.
"""

SEED_QUESTION = (
    "How has the recent turmoil within the OpenAI offices changed your plans to use GPT in a "
    "business process or product in 2024?"
)
SEED_ANSWERS = (
    "Increased uncertainty means we are more likely to evaluate alternative AI chatbots and LLMs.",
    "No change in plans, though we will keep an eye on the situation.",
    "With Sam Altman back in charge, we are more likely to go all-in with GPT and LLMs.",
    "What recent turmoil?",
)
