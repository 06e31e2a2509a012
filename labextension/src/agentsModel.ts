/**
 * The Agents section's model: which agent hosts are on this server, whether
 * they use the gateway, and writing or removing their configs.
 */
import { VDomModel } from '@jupyterlab/ui-components';

import { requestAPI } from './handler';
import { type IRemote, failed, idle, ready, toAPIError } from './remote';
import type { IAgent, IAgentList, IAgentRemoveReport, IAgentWriteReport } from './tokens';

/**
 * What is being done to one agent, or what the last action said.
 */
export interface IAgentActivity {
  phase: 'writing' | 'removing' | 'done' | 'failed';
  message?: string;
}

/**
 * The Claude Code CLI line made last, with its token, until dismissed.
 */
export interface ICliLine {
  command: string;
  tokenId: string;
}

/**
 * Holds the agents and what is happening to each.
 */
export class AgentsModel extends VDomModel {
  /**
   * The agents, in the server's order.
   */
  get agents(): IRemote<readonly IAgent[]> {
    return this._agents;
  }

  /**
   * This server's gateway URL as the server sees it (empty until loaded).
   */
  get gatewayUrl(): string {
    return this._gatewayUrl;
  }

  /**
   * The `claude mcp add` line made last, with its secret; shown once.
   */
  get cliLine(): ICliLine | null {
    return this._cliLine;
  }

  /**
   * What is happening to an agent, if anything.
   */
  activityFor(id: string): IAgentActivity | null {
    return this._activity.get(id) ?? null;
  }

  /**
   * Called after a token was made or revoked, so the token list follows.
   */
  onTokensChanged: () => void = () => undefined;

  /**
   * Fetch the agents again. Never rejects.
   */
  async refresh(): Promise<void> {
    this._agents = { ...this._agents, status: 'loading', error: null };
    this.stateChanged.emit();
    try {
      const body = await requestAPI<IAgentList>('user/agents');
      this._gatewayUrl = body?.gateway_url ?? '';
      this._agents = ready(body?.agents ?? []);
    } catch (reason) {
      this._agents = failed(this._agents, reason);
    }
    this.stateChanged.emit();
  }

  /**
   * Write the agent's config (for `claude-cli`: make the line). Never
   * rejects; the outcome is in `activityFor(id)` (and `cliLine`).
   */
  async write(id: string): Promise<void> {
    this._setActivity(id, { phase: 'writing' });
    try {
      const report = await requestAPI<IAgentWriteReport>(
        `user/agents/${encodeURIComponent(id)}`,
        { method: 'POST' }
      );
      if (report.command && report.token) {
        this._cliLine = { command: report.command, tokenId: report.token_id };
        this._setActivity(id, null);
      } else {
        const message = report.backup
          ? `Written; the previous file is kept as ${baseName(report.backup)}.`
          : 'Written.';
        this._setActivity(id, { phase: 'done', message });
      }
      this._replace(report.agent);
    } catch (reason) {
      this._setActivity(id, { phase: 'failed', message: toAPIError(reason).message });
      await this.refresh();
    }
    this.onTokensChanged();
  }

  /**
   * Remove dodo's entry from the agent's config and revoke its token. Never
   * rejects; the outcome is in `activityFor(id)`.
   */
  async remove(id: string): Promise<void> {
    this._setActivity(id, { phase: 'removing' });
    try {
      const report = await requestAPI<IAgentRemoveReport>(
        `user/agents/${encodeURIComponent(id)}`,
        { method: 'DELETE' }
      );
      let message = report.removed ? 'Removed.' : 'There was nothing to remove.';
      if (report.removed && report.backup) {
        message = `Removed; the previous file is kept as ${baseName(report.backup)}.`;
      }
      if (report.removed && id === 'claude-cli') {
        message = 'Revoked the tokens made for the line. Run: claude mcp remove dodo';
      }
      if (this._cliLine && id === 'claude-cli') {
        this._cliLine = null;
      }
      this._setActivity(id, { phase: 'done', message });
      this._replace(report.agent);
    } catch (reason) {
      this._setActivity(id, { phase: 'failed', message: toAPIError(reason).message });
      await this.refresh();
    }
    this.onTokensChanged();
  }

  /**
   * Forget the CLI line's secret.
   */
  dismissCliLine(): void {
    this._cliLine = null;
    this.stateChanged.emit();
  }

  private _replace(agent: IAgent | undefined): void {
    if (!agent) {
      return;
    }
    this._agents = {
      ...this._agents,
      value: this._agents.value.map(a => (a.id === agent.id ? agent : a))
    };
    this.stateChanged.emit();
  }

  private _setActivity(id: string, activity: IAgentActivity | null): void {
    if (activity) {
      this._activity.set(id, activity);
    } else {
      this._activity.delete(id);
    }
    this.stateChanged.emit();
  }

  private _agents: IRemote<IAgent[]> = idle([]);
  private _gatewayUrl = '';
  private _cliLine: ICliLine | null = null;
  private _activity = new Map<string, IAgentActivity>();
}

/**
 * The last part of a file path.
 */
function baseName(path: string): string {
  return path.split(/[\\/]/).pop() ?? path;
}
