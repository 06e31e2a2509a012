/**
 * The MCP catalog view: a React tree over a `CatalogModel`, and the
 * `ReactWidget` that hosts it in the side panel.
 */
import {
  ReactWidget,
  refreshIcon,
  ToolbarButtonComponent,
  UseSignal
} from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import * as React from 'react';

import type { CatalogModel } from '../model';
import type { ICatalogEntry } from '../tokens';

/**
 * Props of `CatalogPanel`.
 */
export interface ICatalogPanelProps {
  model: CatalogModel;
}

/**
 * Lists the approved MCP servers with loading, error and empty states.
 */
export function CatalogPanel({ model }: ICatalogPanelProps): React.ReactElement {
  const busy = model.status === 'loading';
  return (
    <div className="jp-dodo-CatalogPanel-inner">
      <div className="jp-dodo-CatalogPanel-header">
        <h2 className="jp-dodo-CatalogPanel-title">Approved MCP servers</h2>
        <ToolbarButtonComponent
          icon={refreshIcon}
          tooltip="Refresh the catalog"
          enabled={!busy}
          onClick={() => void model.refresh()}
        />
      </div>
      <div className="jp-dodo-CatalogPanel-body" aria-busy={busy}>
        {model.status === 'ready' && model.staleReason && (
          <div className="jp-dodo-CatalogPanel-stale" role="status">
            {model.staleReason}
          </div>
        )}
        <CatalogBody model={model} />
      </div>
      {model.me && (
        <div className="jp-dodo-CatalogPanel-footer">
          Signed in as <span className="jp-dodo-username">{model.me.username}</span>
        </div>
      )}
    </div>
  );
}

function CatalogBody({ model }: ICatalogPanelProps): React.ReactElement {
  switch (model.status) {
    case 'idle':
    case 'loading':
      return <div className="jp-dodo-CatalogPanel-message">Loading the catalog…</div>;
    case 'error':
      return (
        <div className="jp-dodo-CatalogPanel-message jp-dodo-CatalogPanel-error" role="alert">
          <strong>Could not load the catalog.</strong>
          <div>{model.error?.message ?? 'Unknown error.'}</div>
        </div>
      );
    case 'ready':
      if (model.entries.length === 0) {
        return (
          <div className="jp-dodo-CatalogPanel-message">
            No approved MCP servers yet. An administrator can add them with{' '}
            <code>jupyter dodo catalog add</code> or the admin API.
          </div>
        );
      }
      return (
        <ul className="jp-dodo-CatalogList">
          {model.entries.map(entry => (
            <CatalogEntry key={entry.id} entry={entry} />
          ))}
        </ul>
      );
  }
}

function CatalogEntry({ entry }: { entry: ICatalogEntry }): React.ReactElement {
  const authType = entry.auth_type || 'none';
  return (
    <li
      className={`jp-dodo-CatalogEntry${entry.enabled === false ? ' jp-mod-disabled' : ''}`}
      data-entry-id={entry.id}
    >
      <div className="jp-dodo-CatalogEntry-head">
        <span className="jp-dodo-CatalogEntry-name">{entry.display_name || entry.name}</span>
        <span
          className={`jp-dodo-badge jp-dodo-badge-${authType.replace(/[^a-z0-9_-]/gi, '')}`}
          title={`Authentication: ${authType}`}
        >
          {authType}
        </span>
        {entry.enabled === false && <span className="jp-dodo-badge">disabled</span>}
      </div>
      {entry.description && (
        <div className="jp-dodo-CatalogEntry-description">{entry.description}</div>
      )}
      <div className="jp-dodo-CatalogEntry-url" title={entry.url}>
        {entry.url}
      </div>
    </li>
  );
}

/**
 * The `ReactWidget` that renders `CatalogPanel` and re-renders on every
 * model change. It asks the model for a first load when it first becomes
 * visible, so a JupyterLab start with the panel closed costs no request.
 */
export class CatalogPanelWidget extends ReactWidget {
  constructor(model: CatalogModel) {
    super();
    this._model = model;
    this.addClass('jp-dodo-CatalogPanel');
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._loadOnce();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this._loadOnce();
  }

  protected render(): React.ReactElement {
    return (
      <UseSignal signal={this._model.stateChanged}>
        {() => <CatalogPanel model={this._model} />}
      </UseSignal>
    );
  }

  private _loadOnce(): void {
    if (this.isVisible && this._model.status === 'idle') {
      void this._model.refresh();
    }
  }

  private _model: CatalogModel;
}
