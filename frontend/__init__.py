"""The web frontend: server-rendered pages for the people who use Canaliza (Spanish first)."""
