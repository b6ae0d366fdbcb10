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

# The playground's other examples: a ranked poll, and a repeating poll that starts an hour
# after the playground does.
RANKED_QUESTION = "Rank the talks you want at the next meetup"
RANKED_ANSWERS = (
    "Running Postgres without a DBA",
    "What we learned from a year of on-call",
    "Type hints in a 10-year-old codebase",
    "Accessibility testing on a budget",
    "Building a Discord bot that survives restarts",
)
WEEKLY_QUESTION = "Weekly check-in: how was your week?"
WEEKLY_ANSWERS = ("Great", "Good", "Okay", "Rough")
WELCOME = (
    "Welcome! Vote on the polls below. Polls can go to {news} too: `/poll create` with "
    "`channel:#news`. A weekly check-in starts in an hour: `/poll scheduled` lists it."
)
