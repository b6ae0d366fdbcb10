"""Articles: fetch a shared link safely, extract the article, summarise it. No discord here."""
