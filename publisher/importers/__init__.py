"""Importers: bring past issues (and, in `subscribers`, readers) from other tools into a newsletter folder."""
