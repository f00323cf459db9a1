"""The generation plan (taxonomy, audiences, styles) and the generate → critique → rewrite loop.

``taxonomy`` (the project's subjects > topics > subtopics and dimensions), ``plan`` (cells, the
balanced draw, coverage, seeds from kept web pages), ``prompts`` (templates in resources/prompts),
``replies`` (the JSON schemas asked for; critique JSON repaired or refused, never guessed),
``checks`` (what a page must pass), ``record`` (batches, pages, versions; accepted pages as
documents), ``loop`` (running a batch, resumable, pages side by side), ``threads`` (the page
threads' database calls, done on the batch's thread), ``propose`` (a teacher's subtopics, held
for review), ``diff`` (versions compared).
"""
