"""The jury dashboards: a Voilà application over the store, served by `workbench serve`.

- `server`: the Voilà configuration and launcher (preheated kernels, nothing but the pages);
- `pages`: the call page, the submission page, the scoring form and the token check,
  rendered in the dashboard's kernel through the templates of `workbench.html`;
- `outputs`: the applicant's executed notebook as sanitised, read-only outputs;
- `dashboard.ipynb`: the one notebook Voilà serves; its cells only call `pages`.
"""
