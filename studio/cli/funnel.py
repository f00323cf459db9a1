"""``studio funnel``: documents and words left after each filtering stage."""

from __future__ import annotations

import click

from studio.cli.common import PROJECT, json_option, open_project, print_json, version_option
from studio.text import abbreviated, visible


def _language(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A code the language identifier answers, in its lower case: 'EN' and 'xx' once kept
    nothing, silently."""
    if value is None:
        return None
    from studio.lang import known_languages

    code, known = value.strip().lower(), known_languages()
    if code not in known:
        raise click.BadParameter(
            f"'{visible(abbreviated(value, 40))}' is not a language code the studio detects "
            "(ISO 639-1, such as "
            f"{', '.join(sorted(known & {'de', 'en', 'es', 'fr', 'zh'}))})"
        )
    return code


@click.command("funnel")
@click.argument("project", type=PROJECT)
@version_option("Classifier version for the quality stage (default: the newest that has scored).")
@click.option(
    "--lang",
    default=None,
    callback=_language,
    help="Add a language stage keeping this language code (en, de...).",
)
@json_option
def funnel(project: str, version: str | None, lang: str | None, as_json: bool) -> None:
    """Show how many documents and words survive import, language and quality filters.

    Example: studio funnel ~/proj --lang en --model 0002-tfidf-logistic
    """
    from studio.funnel import funnel as make_funnel

    p = open_project(project, create=False)
    try:
        with p.store() as store:
            result = make_funnel(store, version=version, lang=lang)
    except LookupError as exc:
        raise click.ClickException(str(exc.args[0])) from exc
    if as_json:
        print_json(result.to_dict())
        return
    click.echo(result.text)


COMMANDS = [funnel]
