"""The nightly reconciliation job (``nightly``, ``shard``), its artefacts and drift history
(``artefacts``, ``history``) and the notebook reports over them (``notebook_data``,
``notebook_views``, ``notebooks``)."""
