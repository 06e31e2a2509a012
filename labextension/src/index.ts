/**
 * JupyterLab plugins of dodo-jupyter.
 */
import {
  ILayoutRestorer,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, InputDialog, Notification } from '@jupyterlab/apputils';
import { SidePanel } from '@jupyterlab/ui-components';
import type { AccordionPanel } from '@lumino/widgets';
import * as React from 'react';

import { ActivityModel } from './activityModel';
import { AdminModel } from './adminModel';
import { AgentNotebooksModel } from './agentNotebooksModel';
import { AgentsModel } from './agentsModel';
import { ApprovalWatcher } from './approvals';
import { fetchWaitingCalls, sendApprovalDecision } from './approvalsAPI';
import { ActivityPanel } from './components/ActivityPanel';
import { AdminPanel } from './components/AdminPanel';
import { AgentAccessPanel } from './components/AgentAccessPanel';
import { AgentNotebooksPanel } from './components/AgentNotebooksPanel';
import { AgentsPanel } from './components/AgentsPanel';
import { openApprovalPrompt } from './components/ApprovalPrompt';
import { CatalogPanel } from './components/CatalogPanel';
import { PromptsPanel } from './components/PromptsPanel';
import { ResourcesPanel } from './components/ResourcesPanel';
import { createSection } from './components/Section';
import { ToolsPanel } from './components/ToolsPanel';
import { DirectoryModel } from './directoryModel';
import { mcpIcon } from './icons';
import { DodoModel } from './model';

namespace CommandIDs {
  export const openPanel = 'dodo:open-panel';
  export const connect = 'dodo:connect-server';
}

const PANEL_ID = 'dodo-mcp-panel';

/**
 * The left-sidebar MCP panel and its commands.
 */
const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'dodo-jupyter:panel',
  description:
    'Left-sidebar MCP panel: approved servers, connections, tools, resources, prompts, agent access, agents, activity, agent notebooks and the admin editor; approval prompts for held tool calls.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ): void => {
    const model = new DodoModel();
    const admin = new AdminModel();
    admin.onCatalogChanged = () => void model.refresh();
    const agents = new AgentsModel();
    const activity = new ActivityModel();
    const agentNotebooks = new AgentNotebooksModel(async path => {
      await app.commands.execute('docmanager:open', { path });
    });
    const directory = new DirectoryModel(id => {
      const entry = model.catalog.value.find(e => e.id === id);
      return entry ? entry.display_name || entry.name : id;
    });
    // A connection made, lost or removed changes the resources and prompts; the
    // catalog gives their servers' names.
    let connectionStates = '';
    let serverNames = '';
    model.stateChanged.connect(() => {
      const states = JSON.stringify(model.connections.value.map(c => [c.id, c.state]));
      if (states !== connectionStates) {
        connectionStates = states;
        directory.connectionsChanged();
      }
      const names = JSON.stringify(model.catalog.value.map(e => [e.id, e.display_name, e.name]));
      if (names !== serverNames) {
        serverNames = names;
        directory.namesChanged();
      }
    });
    const withCatalog = (load: () => Promise<void>) => async (): Promise<void> => {
      if (model.catalog.status === 'idle') {
        void model.refresh();
      }
      await load();
    };
    agents.onTokensChanged = () => {
      if (model.tokens.status !== 'idle') {
        void model.refreshTokens();
      }
    };

    const panel = new SidePanel();
    panel.id = PANEL_ID;
    panel.title.icon = mcpIcon;
    panel.title.caption = 'MCP servers and tools';
    panel.addClass('jp-dodo-SidePanel');
    panel.node.setAttribute('aria-label', 'MCP');

    panel.addWidget(
      createSection({
        id: 'dodo-section-servers',
        title: 'Servers',
        model,
        render: m => React.createElement(CatalogPanel, { model: m }),
        load: () => model.refresh()
      })
    );
    panel.addWidget(
      createSection({
        id: 'dodo-section-tools',
        title: 'Tools',
        model,
        render: m => React.createElement(ToolsPanel, { model: m }),
        load: () => model.refreshTools()
      })
    );
    panel.addWidget(
      createSection({
        id: 'dodo-section-resources',
        title: 'Resources',
        model: directory,
        render: m => React.createElement(ResourcesPanel, { model: m }),
        load: withCatalog(() => directory.refreshResources())
      })
    );
    panel.addWidget(
      createSection({
        id: 'dodo-section-prompts',
        title: 'Prompts',
        model: directory,
        render: m => React.createElement(PromptsPanel, { model: m }),
        load: withCatalog(() => directory.refreshPrompts())
      })
    );
    panel.addWidget(
      createSection({
        id: 'dodo-section-agents',
        title: 'Agent access',
        model,
        render: m => React.createElement(AgentAccessPanel, { model: m }),
        load: () => model.refreshTokens()
      })
    );
    panel.addWidget(
      createSection({
        id: 'dodo-section-agent-hosts',
        title: 'Agents',
        model: agents,
        render: m => React.createElement(AgentsPanel, { model: m }),
        load: () => agents.refresh()
      })
    );
    panel.addWidget(
      createSection({
        id: 'dodo-section-activity',
        title: 'Activity',
        model: activity,
        render: m => React.createElement(ActivityPanel, { model: m }),
        load: () => activity.refresh()
      })
    );
    panel.addWidget(
      createSection({
        id: 'dodo-section-agent-notebooks',
        title: 'Agent notebooks',
        model: agentNotebooks,
        render: m => React.createElement(AgentNotebooksPanel, { model: m }),
        load: () => agentNotebooks.refresh()
      })
    );
    const accordion = panel.content as AccordionPanel;
    // Start with Servers open; the others load when first expanded.
    for (let index = 1; index < accordion.widgets.length; index++) {
      accordion.collapse(index);
    }

    let adminShown = false;
    model.stateChanged.connect(() => {
      if (!adminShown && model.me?.is_admin) {
        adminShown = true;
        panel.addWidget(
          createSection({
            id: 'dodo-section-admin',
            title: 'Admin',
            model: admin,
            render: m => React.createElement(AdminPanel, { model: m }),
            load: () => admin.refresh()
          })
        );
        accordion.collapse(accordion.widgets.length - 1);
      }
    });

    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, PANEL_ID);

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Dodo: Open MCP panel',
      caption: 'Show the MCP servers, tools and agent access panel',
      icon: mcpIcon,
      execute: () => app.shell.activateById(PANEL_ID)
    });

    app.commands.addCommand(CommandIDs.connect, {
      label: 'Dodo: Connect MCP server…',
      caption: 'Connect one of the approved MCP servers',
      execute: async () => {
        app.shell.activateById(PANEL_ID);
        await model.refresh();
        const candidates = model.catalog.value.filter(
          e =>
            e.auth_type !== 'static_headers' &&
            !['connected', 'needs_scope'].includes(model.connectionFor(e.id)?.state ?? '')
        );
        if (candidates.length === 0) {
          Notification.info(
            model.catalog.value.length === 0
              ? 'No approved MCP servers yet: an administrator adds them in the Admin section.'
              : 'Every approved server is connected (servers that take headers are set up in the panel).',
            { autoClose: 5000 }
          );
          return;
        }
        const labels = candidates.map(e => `${e.display_name || e.name} (${e.id})`);
        const answer = await InputDialog.getItem({
          title: 'Connect an MCP server',
          items: labels,
          okLabel: 'Connect'
        });
        if (!answer.button.accept || answer.value === null) {
          return;
        }
        const entry = candidates[labels.indexOf(answer.value)];
        if (entry) {
          await model.connect(entry);
        }
      }
    });

    palette?.addItem({ command: CommandIDs.openPanel, category: 'Dodo' });
    palette?.addItem({ command: CommandIDs.connect, category: 'Dodo' });

    // For the lab's lifetime: prompt the owner for each tool call held for approval.
    const serverName = (id: string): string => {
      const entry = model.catalog.value.find(e => e.id === id);
      return entry?.display_name || entry?.name || id;
    };
    const approvals = new ApprovalWatcher({
      fetchCalls: fetchWaitingCalls,
      sendDecision: sendApprovalDecision,
      openPrompt: call => openApprovalPrompt(call, serverName),
      reportError: (call, decision, message) => {
        const verb = decision === 'deny' ? 'deny' : 'approve';
        Notification.error(`Could not ${verb} the call to ${call.tool}: ${message}`, {
          autoClose: 15000
        });
      }
    });
    void approvals.start();
  }
};

export default [panelPlugin];
