"""Three varied prompts for the integrated-gradients convergence check on the bundled model (issue 18)."""

SHORT = "The capital of France is Paris"
LONG = (
    "The history of the printing press begins long before Johannes Gutenberg. In China, woodblock printing was "
    "used as early as the seventh century to reproduce Buddhist texts, calendars and, later, paper money. Movable type "
    "made of baked clay was invented by Bi Sheng around 1040, and metal type appeared in Korea in the thirteenth century, "
    "where the Jikji, a collection of Buddhist teachings, was printed in 1377. What Gutenberg added in Mainz around 1450 "
    "was a complete system: a hand mould that cast uniform letters from an alloy of lead, tin and antimony, an oil-based "
    "ink that clung to metal, and a screw press adapted from those used to make wine and olive oil. The combination was "
    "fast enough to change the economics of books. Within fifty years presses were running in more than two hundred "
    "European towns, and millions of volumes had been printed. Scholars could compare identical copies of a text, "
    "errors could be corrected in a later edition rather than multiplied by every copyist, and pamphlets could spread "
    "an argument across a continent in weeks. Historians still debate how much the press caused the Reformation, the "
    "scientific revolution and the rise of vernacular literature, but few doubt that it made each of them easier. "
    "The press also created new trades, from typefounders to booksellers, and new problems, such as censorship."
)
MIXED = (
    "# café résumé — naïve ☕ 🚀\n\ndef f(x):\n\treturn {\"ключ\": x ** 2}  # 値\n\n\n"
    "| col\t| val |\n|-----|-----|\n| α\t| 1.5e-3 |\n\n    for i in range(3):\n        print(f'{i}\\t→ ok')\n"
)
