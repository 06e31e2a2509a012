/**
 * The Agent notebooks section's model: the notebooks code mode kept of agents'
 * runs (`dodo/api/user/agent-notebooks`), most recently run first.
 */
import { VDomModel } from '@jupyterlab/ui-components';

import { requestAPI } from './handler';
import { type IRemote, failed, idle, ready } from './remote';
import type { IAgentNotebook, IAgentNotebookList } from './tokens';

const EMPTY: IAgentNotebookList = { enabled: false, folder: '', notebooks: [] };

/**
 * Holds the list and whether code mode is on.
 */
export class AgentNotebooksModel extends VDomModel {
  /**
   * @param open - Opens a notebook by its path (JupyterLab's document manager).
   */
  constructor(readonly open: (path: string) => Promise<void>) {
    super();
  }

  /**
   * The list as the server last answered it.
   */
  get list(): IRemote<IAgentNotebookList> {
    return this._list;
  }

  /**
   * Fetch the list again. Never rejects; when calls overlap, only the latest
   * one updates the model.
   */
  async refresh(): Promise<void> {
    const generation = ++this._generation;
    this._list = { ...this._list, status: 'loading', error: null };
    this.stateChanged.emit();
    try {
      const body = await requestAPI<IAgentNotebookList>('user/agent-notebooks');
      if (generation === this._generation) {
        this._list = ready(body ?? EMPTY);
      }
    } catch (reason) {
      if (generation === this._generation) {
        this._list = failed(this._list, reason);
      }
    }
    this.stateChanged.emit();
  }

  private _list: IRemote<IAgentNotebookList> = idle(EMPTY);
  private _generation = 0;
}

/**
 * The file name of a notebook's path.
 */
export function notebookName(notebook: IAgentNotebook): string {
  return notebook.path.split('/').pop() ?? notebook.path;
}

/**
 * Who ran it, as people read it: the MCP client, else the token's label.
 */
export function notebookAgent(notebook: IAgentNotebook): string {
  const { client, token_label: label } = notebook.agent;
  if (client && label) {
    return `${client} (token “${label}”)`;
  }
  return client || (label ? `token “${label}”` : 'an unnamed agent');
}
