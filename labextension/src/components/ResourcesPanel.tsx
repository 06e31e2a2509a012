/**
 * The Resources section: the resources and resource templates of the caller's
 * connected servers grouped by server, a search box, and reading one (a
 * template once its variables are filled in) with its contents shown below it
 * (`ResourceView.tsx`).
 */
import { InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { DirectoryModel } from '../directoryModel';
import { expandTemplate, templateVariables } from '../mcpContent';
import { toAPIError } from '../remote';
import { matchesQuery } from '../serverGroups';
import type { IReadResourceResult, IResourceInfo, IResourceTemplateInfo } from '../tokens';
import { Busy, ErrorNote, Field, Note, domId } from './common';
import { ResourceView } from './ResourceView';

/**
 * Props of `ResourcesPanel`.
 */
export interface IResourcesPanelProps {
  model: DirectoryModel;
}

interface IGroup {
  resources: IResourceInfo[];
  templates: IResourceTemplateInfo[];
}

export function ResourcesPanel({ model }: IResourcesPanelProps): React.ReactElement {
  const [query, setQuery] = React.useState('');
  const { resources: listing } = model;
  const { resources, templates } = listing.value;
  const matches = (...texts: (string | undefined)[]): boolean => matchesQuery(query, ...texts);
  const groups = new Map<string, IGroup>();
  const groupOf = (serverId: string): IGroup => {
    const group = groups.get(serverId) ?? { resources: [], templates: [] };
    groups.set(serverId, group);
    return group;
  };
  for (const r of resources) {
    if (matches(r.name, r.title, r.uri, r.description, r.mimeType)) {
      groupOf(r.server_id).resources.push(r);
    }
  }
  for (const t of templates) {
    if (matches(t.name, t.title, t.uriTemplate, t.description, t.mimeType)) {
      groupOf(t.server_id).templates.push(t);
    }
  }
  const total = resources.length + templates.length;

  return (
    <div className="jp-dodo-Section" aria-busy={listing.status === 'loading'}>
      {total > 0 && (
        <div className="jp-dodo-Search">
          <InputGroup
            type="search"
            rightIcon="ui-components:search"
            placeholder="Search resources"
            aria-label="Search resources"
            value={query}
            onChange={e => setQuery((e.target as HTMLInputElement).value)}
          />
        </div>
      )}
      <ErrorNote title="Could not load your resources." error={listing.error} />
      {listing.status === 'loading' && total === 0 && <Busy label="Loading resources…" />}
      {listing.status === 'ready' && total === 0 && (
        <Note>
          <strong>No resources yet.</strong> Resources are documents, files and data your
          connected servers offer; connect a server that has some in the Servers section.
        </Note>
      )}
      {total > 0 && groups.size === 0 && (
        <div className="jp-dodo-Message">No resource matches “{query}”.</div>
      )}
      {[...groups.entries()].map(([serverId, group]) => {
        const count = group.resources.length + group.templates.length;
        return (
          <section
            key={serverId}
            className="jp-dodo-ToolGroup"
            aria-label={`Resources of ${model.serverName(serverId)}`}
          >
            <h3 className="jp-dodo-ToolGroup-title">
              {model.serverName(serverId)}{' '}
              <span className="jp-dodo-ToolGroup-count">
                {count} resource{count === 1 ? '' : 's'}
              </span>
            </h3>
            <ul className="jp-dodo-ToolList">
              {group.resources.map(resource => (
                <ResourceItem key={resource.uri} model={model} resource={resource} />
              ))}
              {group.templates.map(template => (
                <TemplateItem key={template.uriTemplate} model={model} template={template} />
              ))}
            </ul>
          </section>
        );
      })}
    </div>
  );
}

/**
 * A read in progress, its result or its failure.
 */
function useRead(model: DirectoryModel): {
  busy: boolean;
  result: IReadResourceResult | null;
  failure: string | null;
  read: (uri: string) => Promise<void>;
} {
  const [busy, setBusy] = React.useState(false);
  const [result, setResult] = React.useState<IReadResourceResult | null>(null);
  const [failure, setFailure] = React.useState<string | null>(null);
  const read = async (uri: string): Promise<void> => {
    setBusy(true);
    setFailure(null);
    setResult(null);
    try {
      setResult(await model.readResource(uri));
    } catch (reason) {
      setFailure(toAPIError(reason).message);
    } finally {
      setBusy(false);
    }
  };
  return { busy, result, failure, read };
}

function ResourceItem({
  model,
  resource
}: {
  model: DirectoryModel;
  resource: IResourceInfo;
}): React.ReactElement {
  const [open, setOpen] = React.useState(false);
  const { busy, result, failure, read } = useRead(model);
  const label = resource.title || resource.name || resource.original_uri;
  const toggle = (): void => {
    if (!open) {
      void read(resource.uri);
    }
    setOpen(!open);
  };
  return (
    <li className="jp-dodo-Tool jp-dodo-Resource" data-uri={resource.uri}>
      <div className="jp-dodo-Tool-head">
        <span className="jp-dodo-Tool-name" title={resource.uri}>
          {label}
        </span>
        {resource.mimeType && <span className="jp-dodo-badge">{resource.mimeType}</span>}
      </div>
      <div className="jp-dodo-Tool-fullname">{resource.original_uri || resource.uri}</div>
      {resource.description && (
        <div className="jp-dodo-Tool-description">{resource.description}</div>
      )}
      <div className="jp-dodo-Actions">
        <button
          type="button"
          className="jp-mod-styled"
          aria-expanded={open}
          aria-label={`${open ? 'Close' : 'Read'} ${label}`}
          onClick={toggle}
        >
          {open ? 'Close' : 'Read'}
        </button>
      </div>
      {open && busy && <Busy label="Reading…" />}
      {open && failure && (
        <ErrorNote title={`Could not read ${resource.uri}.`} error={failure} />
      )}
      {open && result && <ResourceView result={result} label={label} />}
    </li>
  );
}

function TemplateItem({
  model,
  template
}: {
  model: DirectoryModel;
  template: IResourceTemplateInfo;
}): React.ReactElement {
  const variables = React.useMemo(() => templateVariables(template.uriTemplate), [template]);
  const [open, setOpen] = React.useState(false);
  const [values, setValues] = React.useState<Record<string, string>>({});
  const [errors, setErrors] = React.useState<Record<string, string>>({});
  const { busy, result, failure, read } = useRead(model);
  const label = template.title || template.name || template.original_uri_template;

  const submit = (event: React.FormEvent): void => {
    event.preventDefault();
    const missing: Record<string, string> = {};
    for (const name of variables) {
      if (!(values[name] ?? '').trim()) {
        missing[name] = 'Required.';
      }
    }
    setErrors(missing);
    if (Object.keys(missing).length === 0) {
      void read(expandTemplate(template.uriTemplate, values));
    }
  };

  return (
    <li
      className="jp-dodo-Tool jp-dodo-Resource jp-mod-template"
      data-uri-template={template.uriTemplate}
    >
      <div className="jp-dodo-Tool-head">
        <span className="jp-dodo-Tool-name" title={template.uriTemplate}>
          {label}
        </span>
        <span className="jp-dodo-badge" title="A resource template: fill in its values to read one">
          template
        </span>
      </div>
      <div className="jp-dodo-Tool-fullname">
        {template.original_uri_template || template.uriTemplate}
      </div>
      {template.description && (
        <div className="jp-dodo-Tool-description">{template.description}</div>
      )}
      <div className="jp-dodo-Actions">
        <button
          type="button"
          className="jp-mod-styled"
          aria-expanded={open}
          aria-label={`${open ? 'Close' : 'Fill in'} ${label}`}
          onClick={() => setOpen(!open)}
        >
          {open ? 'Close' : 'Fill in'}
        </button>
      </div>
      {open && (
        <div className="jp-dodo-Try">
          <form
            className="jp-dodo-Form"
            aria-label={`Read ${label}`}
            onSubmit={submit}
            noValidate
          >
            {variables.map(name => (
              <Field
                key={name}
                id={domId('template', template.uriTemplate, name)}
                label={name}
                error={errors[name]}
                required
              >
                {props => (
                  <input
                    {...props}
                    className="jp-mod-styled jp-dodo-Input"
                    type="text"
                    value={values[name] ?? ''}
                    onChange={e => setValues({ ...values, [name]: e.target.value })}
                  />
                )}
              </Field>
            ))}
            <div className="jp-dodo-Actions">
              <button type="submit" className="jp-mod-styled jp-mod-accept" disabled={busy}>
                {busy ? 'Reading…' : 'Read'}
              </button>
            </div>
          </form>
          {busy && <Busy label="Reading…" />}
          {failure && <ErrorNote title="Could not read the resource." error={failure} />}
          {result && <ResourceView result={result} label={label} />}
        </div>
      )}
    </li>
  );
}
