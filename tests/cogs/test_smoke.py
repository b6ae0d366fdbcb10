import discord

SEED_Q = "How has the recent turmoil within the OpenAI offices changed your plans to use GPT in a business process or product in 2024?"
SEED_OPTIONS = " | ".join([
    "Increased uncertainty means we are more likely to evaluate alternative AI chatbots and LLMs.",
    "No change in plans, though we will keep an eye on the situation.",
    "With Sam Altman back in charge, we are more likely to go all-in with GPT and LLMs.",
    "What recent turmoil?",
])


async def test_create_and_vote(env):
    guild = env.create_guild()
    channel = guild.create_text_channel("general")
    alice = guild.add_member(env.create_user("alice"))
    result = await alice.slash(channel, "poll create", question=SEED_Q, options=SEED_OPTIONS)
    print(result, result.followups)
    msg = channel.last_message
    print(msg.embeds[0].to_dict() if msg.embeds else None, msg.components)
    r = await alice.click(msg, custom_id=msg.components[0].children[0].custom_id)
    print(r.response.content)
    await env.advance_time(6)
    print(channel.last_message.embeds[0].footer.text)
