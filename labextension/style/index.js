import './base.css';
import './governance.css';
import './directory.css';
