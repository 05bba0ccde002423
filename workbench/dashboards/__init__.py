"""The jury dashboards: a Voilà application over the store, served by `workbench serve`.

- `server`: the Voilà configuration and launcher (preheated kernels, nothing but the pages);
- `kernels`: one kernel per open page, freed when it closes or idles, and a cap;
- `pages`: the call page, the submission page, the scoring form and the token check,
  rendered in the dashboard's kernel through the templates of `workbench.html`, and
  redrawn in the same kernel as the juror moves between them (`pages.view`);
- `outputs`: the applicant's executed notebook as sanitised, read-only outputs;
- `dashboard.ipynb`: the one notebook Voilà serves; its cells only call `pages`.
"""
