/**
 * The Prompts section: the prompts of the caller's connected servers grouped
 * by server, a search box, and a form per prompt (`PromptForm.tsx`) that fills
 * it in and shows its messages.
 */
import { InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { DirectoryModel } from '../directoryModel';
import { groupByServer } from '../serverGroups';
import type { IPromptInfo } from '../tokens';
import { Busy, ErrorNote, Note } from './common';
import { PromptForm } from './PromptForm';

/**
 * Props of `PromptsPanel`.
 */
export interface IPromptsPanelProps {
  model: DirectoryModel;
}

export function PromptsPanel({ model }: IPromptsPanelProps): React.ReactElement {
  const [query, setQuery] = React.useState('');
  const { prompts } = model;
  const groups = groupByServer(prompts.value, query, p => [
    p.name,
    p.title,
    p.description,
    p.server_id
  ]);

  return (
    <div className="jp-dodo-Section" aria-busy={prompts.status === 'loading'}>
      {prompts.value.length > 0 && (
        <div className="jp-dodo-Search">
          <InputGroup
            type="search"
            rightIcon="ui-components:search"
            placeholder="Search prompts"
            aria-label="Search prompts"
            value={query}
            onChange={e => setQuery((e.target as HTMLInputElement).value)}
          />
        </div>
      )}
      <ErrorNote title="Could not load your prompts." error={prompts.error} />
      {prompts.status === 'loading' && prompts.value.length === 0 && (
        <Busy label="Loading prompts…" />
      )}
      {prompts.status === 'ready' && prompts.value.length === 0 && (
        <Note>
          <strong>No prompts yet.</strong> Prompts are message templates your connected servers
          offer; connect a server that has some in the Servers section.
        </Note>
      )}
      {prompts.value.length > 0 && groups.size === 0 && (
        <div className="jp-dodo-Message">No prompt matches “{query}”.</div>
      )}
      {[...groups.entries()].map(([serverId, list]) => (
        <section
          key={serverId}
          className="jp-dodo-ToolGroup"
          aria-label={`Prompts of ${model.serverName(serverId)}`}
        >
          <h3 className="jp-dodo-ToolGroup-title">
            {model.serverName(serverId)}{' '}
            <span className="jp-dodo-ToolGroup-count">
              {list.length} prompt{list.length === 1 ? '' : 's'}
            </span>
          </h3>
          <ul className="jp-dodo-ToolList">
            {list.map(prompt => (
              <PromptItem key={prompt.name} model={model} prompt={prompt} />
            ))}
          </ul>
        </section>
      ))}
    </div>
  );
}

function PromptItem({
  model,
  prompt
}: {
  model: DirectoryModel;
  prompt: IPromptInfo;
}): React.ReactElement {
  const [open, setOpen] = React.useState(false);
  const label = prompt.title || prompt.original_name || prompt.name;
  const args = prompt.arguments ?? [];
  return (
    <li className="jp-dodo-Tool jp-dodo-Prompt" data-prompt-name={prompt.name}>
      <div className="jp-dodo-Tool-head">
        <span className="jp-dodo-Tool-name" title={prompt.name}>
          {label}
        </span>
      </div>
      <div className="jp-dodo-Tool-fullname">{prompt.name}</div>
      {prompt.description && <div className="jp-dodo-Tool-description">{prompt.description}</div>}
      {args.length > 0 && (
        <div className="jp-dodo-Prompt-arguments">
          Arguments:{' '}
          {args.map((a, index) => (
            <React.Fragment key={a.name}>
              {index > 0 && ', '}
              <code>{a.name}</code>
              {!a.required && ' (optional)'}
            </React.Fragment>
          ))}
        </div>
      )}
      <div className="jp-dodo-Actions">
        <button
          type="button"
          className="jp-mod-styled"
          aria-expanded={open}
          aria-label={`${open ? 'Close' : 'Use'} ${label}`}
          onClick={() => setOpen(!open)}
        >
          {open ? 'Close' : 'Use'}
        </button>
      </div>
      {open && <PromptForm model={model} prompt={prompt} label={label} />}
    </li>
  );
}
