"""LinkedIn profile fetching under a monthly quota (seed 000): tables, repositories, client, cleaning."""
