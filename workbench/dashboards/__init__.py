"""The jury dashboards: a Voilà application over the store, served by `workbench serve`.

- `server`: the Voilà configuration and launcher (preheated kernels, nothing but the pages);
- `pages`: the call page and the submission page, rendered in the dashboard's kernel;
- `outputs`: the applicant's executed notebook as sanitised, read-only outputs;
- `i18n`: every label, in French and English;
- `dashboard.ipynb`: the one notebook Voilà serves; its cells only call `pages`.
"""
