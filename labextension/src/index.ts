/**
 * JupyterLab plugins of dodo-jupyter.
 */
import {
  ILayoutRestorer,
  type JupyterFrontEnd,
  type JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { SidePanel } from '@jupyterlab/ui-components';
import { Panel } from '@lumino/widgets';

import { CatalogPanelWidget } from './components/CatalogPanel';
import { mcpIcon } from './icons';
import { CatalogModel } from './model';

namespace CommandIDs {
  export const openPanel = 'dodo:open-panel';
}

const PANEL_ID = 'dodo-mcp-panel';

/**
 * The left-sidebar MCP panel and its "open" command.
 */
const panelPlugin: JupyterFrontEndPlugin<void> = {
  id: 'dodo-jupyter:panel',
  description: 'Left-sidebar panel listing the approved MCP servers.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ): void => {
    const model = new CatalogModel();

    const panel = new SidePanel({ content: new Panel() });
    panel.id = PANEL_ID;
    panel.title.icon = mcpIcon;
    panel.title.caption = 'MCP';
    panel.addClass('jp-dodo-SidePanel');
    panel.addWidget(new CatalogPanelWidget(model));

    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, PANEL_ID);

    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Dodo: Open MCP panel',
      icon: mcpIcon,
      execute: () => app.shell.activateById(PANEL_ID)
    });
    palette?.addItem({ command: CommandIDs.openPanel, category: 'Dodo' });
  }
};

export default [panelPlugin];
