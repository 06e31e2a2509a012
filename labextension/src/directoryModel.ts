/**
 * The Resources and Prompts sections' model: the resources, resource templates
 * and prompts of the caller's connected servers (`dodo/api/mcp/resources`,
 * `dodo/api/mcp/prompts`), reading one resource and filling in one prompt.
 * Like the gateway's directory it is named after, it holds what the servers
 * offer besides tools.
 */
import { VDomModel } from '@jupyterlab/ui-components';

import { requestAPI } from './handler';
import { type IRemote, failed, idle, ready } from './remote';
import type {
  IGetPromptResult,
  IPromptInfo,
  IReadResourceResult,
  IResourceListing
} from './tokens';

/**
 * Holds the listings; reads and prompt runs are returned to the caller.
 */
export class DirectoryModel extends VDomModel {
  /**
   * @param serverName - A catalog id's display name (the catalog is `DodoModel`'s).
   */
  constructor(readonly serverName: (id: string) => string = id => id) {
    super();
  }

  /**
   * The resources and templates, as the server listed them.
   */
  get resources(): IRemote<IResourceListing> {
    return this._resources;
  }

  /**
   * The prompts, by gateway name.
   */
  get prompts(): IRemote<readonly IPromptInfo[]> {
    return this._prompts;
  }

  /**
   * Fetch the resources and templates again. Never rejects; when calls
   * overlap, only the latest one updates the model.
   */
  async refreshResources(): Promise<void> {
    const generation = ++this._resourcesGeneration;
    this._resources = { ...this._resources, status: 'loading', error: null };
    this.stateChanged.emit();
    try {
      const body = await requestAPI<IResourceListing>('mcp/resources');
      if (generation === this._resourcesGeneration) {
        this._resources = ready({
          resources: body?.resources ?? [],
          templates: body?.templates ?? []
        });
      }
    } catch (reason) {
      if (generation === this._resourcesGeneration) {
        this._resources = failed(this._resources, reason);
      }
    }
    if (!this.isDisposed) {
      this.stateChanged.emit();
    }
  }

  /**
   * Fetch the prompts again. Never rejects; when calls overlap, only the
   * latest one updates the model.
   */
  async refreshPrompts(): Promise<void> {
    const generation = ++this._promptsGeneration;
    this._prompts = { ...this._prompts, status: 'loading', error: null };
    this.stateChanged.emit();
    try {
      const body = await requestAPI<{ prompts: IPromptInfo[] }>('mcp/prompts');
      if (generation === this._promptsGeneration) {
        this._prompts = ready(body?.prompts ?? []);
      }
    } catch (reason) {
      if (generation === this._promptsGeneration) {
        this._prompts = failed(this._prompts, reason);
      }
    }
    if (!this.isDisposed) {
      this.stateChanged.emit();
    }
  }

  /**
   * The caller's connections changed: list again what was listed before.
   */
  connectionsChanged(): void {
    if (this._resources.status !== 'idle') {
      void this.refreshResources();
    }
    if (this._prompts.status !== 'idle') {
      void this.refreshPrompts();
    }
  }

  /**
   * The servers' names changed (the catalog was loaded or edited).
   */
  namesChanged(): void {
    this.stateChanged.emit();
  }

  /**
   * Read a resource by its gateway URI.
   *
   * @throws {DodoAPIError} With the server's words when it cannot be read
   *   (404: no such resource; 502: the server failed).
   */
  async readResource(uri: string): Promise<IReadResourceResult> {
    return requestAPI<IReadResourceResult>(
      `mcp/resources/read?${new URLSearchParams({ uri }).toString()}`
    );
  }

  /**
   * Fill in a prompt with its arguments (text).
   *
   * @throws {DodoAPIError} With `fields` for missing or refused arguments.
   */
  async getPrompt(name: string, args: Record<string, string>): Promise<IGetPromptResult> {
    return requestAPI<IGetPromptResult>('mcp/prompts/get', {
      method: 'POST',
      body: JSON.stringify({ name, arguments: args })
    });
  }

  private _resources: IRemote<IResourceListing> = idle({ resources: [], templates: [] });
  private _prompts: IRemote<IPromptInfo[]> = idle([]);
  private _resourcesGeneration = 0;
  private _promptsGeneration = 0;
}
