"""The shared async-export engine (``engine``), file readers (``readers``) and stream bases
(``streams``) that every vendor's export-driven streams are built on."""
