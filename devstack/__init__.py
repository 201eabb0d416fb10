"""Development aids that no deployment imports: embedded Redis/Postgres, the ``aob up`` supervisor and the
scripted demo model."""
