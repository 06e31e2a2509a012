import './base.css';
import './governance.css';
